//! The client side of Server-Sent Events: an incremental
//! `text/event-stream` parser, bytes in, events out, as the HTML standard's
//! "event stream interpretation" reads a stream.
//!
//! Any split of the input gives the same events (a `\r\n` cut in two, a
//! byte-order mark cut in three). The parser keeps the last event id and
//! the server's `retry:` across connections: after a drop, call
//! [`SseParser::reconnect`], send the id in `Last-Event-ID`, and feed the
//! new stream.
//!
//! ```
//! use duplex_polling::SseParser;
//!
//! let mut parser = SseParser::new();
//! parser.receive(b"retry: 500\nid: 7\nevent: tick\ndata: a\r").unwrap();
//! parser.receive(b"\ndata: b\n\n: a comment\n").unwrap();
//! let event = parser.poll_event().unwrap();
//! assert_eq!((event.id.as_str(), event.event.as_str(), event.data.as_str()), ("7", "tick", "a\nb"));
//! assert_eq!(parser.last_event_id(), "7");
//! assert_eq!(parser.retry(), Some(std::time::Duration::from_millis(500)));
//! assert!(parser.poll_event().is_none());
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use crate::Error;

/// The UTF-8 byte-order mark, skipped once at the start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The last event id when the event was dispatched (`id:` fields
    /// persist from event to event); empty when none was ever set.
    pub id: String,
    /// The `event:` field; `message` when the event had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Limits of an [`SseParser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseParserConfig {
    /// The longest line, and the most data one event may gather, in bytes.
    /// Default 1 MiB.
    pub max_event_size: usize,
    /// Most events parsed and not yet taken with
    /// [`SseParser::poll_event`]. Default 1024.
    pub max_queued_events: usize,
}

impl Default for SseParserConfig {
    fn default() -> Self {
        Self {
            max_event_size: 1024 * 1024,
            max_queued_events: 1024,
        }
    }
}

/// An incremental `text/event-stream` parser. See the module
/// documentation.
#[derive(Debug, Clone)]
pub struct SseParser {
    config: SseParserConfig,
    /// How many bytes of the byte-order mark were matched; 3 once the
    /// check is over (found or not).
    bom_matched: usize,
    /// The line being read, without its end.
    line: Vec<u8>,
    /// The last byte was `\r`: a `\n` right after it ends nothing more.
    after_cr: bool,
    data: String,
    /// Whether any `data:` field was seen for the event being built (an
    /// empty `data:` still makes an event).
    has_data: bool,
    event: String,
    last_event_id: String,
    retry: Option<Duration>,
    events: VecDeque<SseEvent>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default limits.
    pub fn new() -> SseParser {
        SseParser::with_config(SseParserConfig::default())
    }

    /// A parser with these limits.
    pub fn with_config(config: SseParserConfig) -> SseParser {
        SseParser {
            config,
            bom_matched: 0,
            line: Vec::new(),
            after_cr: false,
            data: String::new(),
            has_data: false,
            event: String::new(),
            last_event_id: String::new(),
            retry: None,
            events: VecDeque::new(),
        }
    }

    /// Starts a `Last-Event-ID` id (one given by the user, say), as if the
    /// stream had set it.
    pub fn set_last_event_id(&mut self, id: &str) {
        id.clone_into(&mut self.last_event_id);
    }

    /// Feeds received bytes. Fails (and the connection should be dropped)
    /// when a line or an event's data outgrows
    /// [`SseParserConfig::max_event_size`] or too many events wait to be
    /// taken; both are reported as [`Error::PayloadTooLarge`].
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        for &byte in data {
            if self.bom_matched < BOM.len() {
                if BOM.get(self.bom_matched) == Some(&byte) {
                    self.bom_matched += 1;
                    continue;
                }
                // Not a byte-order mark after all: what matched of it is
                // ordinary line content (none of it ends a line).
                let matched = BOM.get(..self.bom_matched).unwrap_or_default();
                self.line.extend_from_slice(matched);
                self.bom_matched = BOM.len();
            }
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' => self.end_line()?,
                b'\r' => {
                    self.end_line()?;
                    self.after_cr = true;
                }
                _ => {
                    if self.line.len() >= self.config.max_event_size {
                        return Err(self.too_large());
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    /// The next dispatched event.
    pub fn poll_event(&mut self) -> Option<SseEvent> {
        self.events.pop_front()
    }

    /// The last event id the stream set (or [`SseParser::set_last_event_id`]
    /// gave): what a reconnection sends in `Last-Event-ID`. Empty when
    /// none.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection delay the server asked for with `retry:`.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Forgets the partial line and event of a stream that ended (they are
    /// never dispatched) and expects a new stream (which may start with a
    /// byte-order mark); the last event id, the retry delay and events not
    /// yet taken stay.
    pub fn reconnect(&mut self) {
        self.bom_matched = 0;
        self.line.clear();
        self.after_cr = false;
        self.data.clear();
        self.has_data = false;
        self.event.clear();
    }

    fn too_large(&self) -> Error {
        Error::PayloadTooLarge {
            limit: self.config.max_event_size,
        }
    }

    /// Interprets the line just ended.
    fn end_line(&mut self) -> Result<(), Error> {
        let line = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&line);
        if text.is_empty() {
            self.dispatch()?;
        } else if !text.starts_with(':') {
            let (field, value) = match text.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (text.as_ref(), ""),
            };
            self.field(field, value)?;
        }
        // Keep the line's allocation for the next one.
        self.line = line;
        self.line.clear();
        Ok(())
    }

    fn field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.config.max_event_size {
                    return Err(self.too_large());
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // An id with NUL is ignored, so that it cannot cut a header.
            "id" if !value.contains('\0') => value.clone_into(&mut self.last_event_id),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Too many digits for a u64: the longest delay there is.
                let ms = value.parse::<u64>().unwrap_or(u64::MAX);
                self.retry = Some(Duration::from_millis(ms));
            }
            _ => {}
        }
        Ok(())
    }

    /// An empty line: the event gathered so far goes out, if it has data.
    fn dispatch(&mut self) -> Result<(), Error> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return Ok(());
        }
        if self.events.len() >= self.config.max_queued_events {
            return Err(Error::PayloadTooLarge {
                limit: self.config.max_queued_events,
            });
        }
        let data = std::mem::take(&mut self.data);
        self.events.push_back(SseEvent {
            id: self.last_event_id.clone(),
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(parser: &mut SseParser) -> Vec<SseEvent> {
        std::iter::from_fn(|| parser.poll_event()).collect()
    }

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        parser.receive(input).unwrap();
        events(&mut parser)
    }

    fn ev(id: &str, event: &str, data: &str) -> SseEvent {
        SseEvent {
            id: id.into(),
            event: event.into(),
            data: data.into(),
        }
    }

    /// A stream with every feature: BOM, CR, CRLF and LF endings,
    /// comments, a field without a colon, an ignored field, ids that
    /// persist, an id with NUL, retry, multi-line and empty data.
    const STREAM: &[u8] = b"\xEF\xBB\xBFretry: 1500\r\n: hello\rid: 1\nevent: a\ndata: x\r\ndata:y\n\n\
data\n\nid: 2\0\ndata:  two spaces\nfoo: bar\n\rid\nevent: b\ndata: z\n\nevent: lost\n\ndata: partial";

    fn stream_events() -> Vec<SseEvent> {
        vec![
            ev("1", "a", "x\ny"),
            ev("1", "message", ""),
            ev("1", "message", " two spaces"),
            ev("", "b", "z"),
        ]
    }

    #[test]
    fn parses_every_field_and_line_ending() {
        let mut parser = SseParser::new();
        parser.receive(STREAM).unwrap();
        assert_eq!(events(&mut parser), stream_events());
        assert_eq!(parser.retry(), Some(Duration::from_millis(1500)));
        assert_eq!(parser.last_event_id(), "");
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let whole = stream_events();
        for at in 0..=STREAM.len() {
            let mut parser = SseParser::new();
            parser.receive(&STREAM[..at]).unwrap();
            parser.receive(&STREAM[at..]).unwrap();
            assert_eq!(events(&mut parser), whole, "split at {at}");
        }
        let mut parser = SseParser::new();
        for byte in STREAM {
            parser.receive(std::slice::from_ref(byte)).unwrap();
        }
        assert_eq!(events(&mut parser), whole, "one byte at a time");
    }

    #[test]
    fn a_bom_is_skipped_only_at_the_start() {
        assert_eq!(
            parse_whole(b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n"),
            // The second BOM makes a field name that is not `data`.
            vec![ev("", "message", "a")]
        );
        // Half a BOM is line content.
        assert_eq!(
            parse_whole(b"\xEFdata: a\n\ndata: b\n\n"),
            vec![ev("", "message", "b")]
        );
    }

    #[test]
    fn retry_needs_digits_only() {
        let mut parser = SseParser::new();
        parser
            .receive(b"retry: 12a\nretry:\nretry: -1\n\n")
            .unwrap();
        assert_eq!(parser.retry(), None);
        parser.receive(b"retry: 99999999999999999999999\n").unwrap();
        assert_eq!(parser.retry(), Some(Duration::from_millis(u64::MAX)));
    }

    #[test]
    fn reconnect_drops_the_partial_event_and_keeps_the_id() {
        let mut parser = SseParser::new();
        parser.set_last_event_id("s:0");
        parser
            .receive(b"id: s:1\ndata: one\n\nid: s:2\ndata: cut")
            .unwrap();
        assert_eq!(events(&mut parser), vec![ev("s:1", "message", "one")]);
        // The `id: s:2` line was complete, so it counts; its event never
        // ended and is lost.
        assert_eq!(parser.last_event_id(), "s:2");
        parser.reconnect();
        parser.receive(b"\xEF\xBB\xBFdata: fresh\n\n").unwrap();
        assert_eq!(events(&mut parser), vec![ev("s:2", "message", "fresh")]);
    }

    #[test]
    fn oversized_lines_data_and_backlogs_fail() {
        let config = SseParserConfig {
            max_event_size: 8,
            max_queued_events: 2,
        };
        let mut parser = SseParser::with_config(config);
        assert!(matches!(
            parser.receive(b"data: 123456789"),
            Err(Error::PayloadTooLarge { limit: 8 })
        ));
        let mut parser = SseParser::with_config(config);
        assert!(parser.receive(b"data:1234\ndata:1234\n").is_err());
        let mut parser = SseParser::with_config(config);
        assert!(parser.receive(b"data:1\n\ndata:2\n\ndata:3\n\n").is_err());
        let mut parser = SseParser::with_config(config);
        parser.receive(b"data:1\n\ndata:2\n\n").unwrap();
        assert_eq!(events(&mut parser).len(), 2);
        parser.receive(b"data:3\n\n").unwrap();
        assert_eq!(events(&mut parser).len(), 1);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            parse_whole(b"data: \xFF\n\n"),
            vec![ev("", "message", "\u{FFFD}")]
        );
    }
}
