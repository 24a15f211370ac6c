//! Incremental frame decoding.
//!
//! Bytes go in through [`FrameDecoder::receive`] (or straight into
//! [`FrameDecoder::buffer_mut`]); [`FrameDecoder::decode`] hands back one
//! [`Decoded`] item at a time. The decoder remembers how far it has scanned,
//! so feeding a frame one octet at a time costs the same as feeding it whole,
//! and any split of the input gives the same items and the same error.
//!
//! A frame, once complete, is cut from the buffer as one `Bytes`; header
//! names, values and the body are slices of it (a header with an escape
//! sequence gets its own small buffer). The only per-frame allocation is the
//! header list.

use bytes::{Buf, BytesMut};

use crate::error::Error;
use crate::frame::{Command, Frame, Header};
use crate::version::Version;

/// Size limits for received frames. Exceeding one is a peer fault
/// ([`Error::HeaderLineTooLong`], [`Error::TooManyHeaders`],
/// [`Error::BodyTooLarge`], [`Error::FrameTooLarge`]); a server session
/// answers it with an `ERROR` frame and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most header lines in one frame. Default 128.
    pub max_headers: usize,
    /// Longest command or header line, in octets before its LF (a CR before
    /// the LF counts). Default 8 KiB.
    pub max_header_line: usize,
    /// Largest body. Default 4 MiB.
    pub max_body: usize,
    /// Largest frame: command, headers, blank line, body and NUL.
    /// Default 4 MiB + 64 KiB.
    pub max_frame: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_headers: 128,
            max_header_line: 8 * 1024,
            max_body: 4 * 1024 * 1024,
            max_frame: 4 * 1024 * 1024 + 64 * 1024,
        }
    }
}

/// One item read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete frame.
    Frame(Frame),
    /// An end-of-line between frames: a heart-beat (or the optional EOLs
    /// after a frame's NUL, which look the same on the wire).
    HeartBeat,
}

/// Where in a header line's bytes the name ends: `start..colon` is the
/// name, `colon + 1..end` the value (line end excluded).
#[derive(Debug, Clone, Copy)]
struct HeaderSpan {
    start: usize,
    colon: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy)]
enum Scan {
    /// Between frames: EOLs here are heart-beats.
    Idle,
    /// Reading the command (when `command` is `None`) and header lines;
    /// `line_start` is where the next unread line begins, `scanned` how far
    /// its LF has been looked for.
    Head {
        line_start: usize,
        scanned: usize,
        command: Option<Command>,
    },
    /// Reading the body, which starts at `body_start`. Without a
    /// `content-length`, `scanned` is how far a NUL has been looked for.
    Body {
        command: Command,
        body_start: usize,
        content_length: Option<usize>,
        scanned: usize,
    },
}

/// Decodes a stream of STOMP frames. See the module documentation.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    limits: Limits,
    version: Version,
    scan: Scan,
    spans: Vec<HeaderSpan>,
    content_length: Option<usize>,
    failed: Option<Error>,
}

impl FrameDecoder {
    /// A decoder with these limits, reading STOMP 1.2 until told otherwise.
    pub fn new(limits: Limits) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            limits,
            version: Version::V1_2,
            scan: Scan::Idle,
            spans: Vec::new(),
            content_length: None,
            failed: None,
        }
    }

    /// Which version's escaping applies to the frames decoded from now on.
    /// `CONNECT`, `STOMP` and `CONNECTED` are never unescaped. Line ends may
    /// be LF or CRLF in every version.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The version set by [`FrameDecoder::set_version`].
    pub fn version(&self) -> Version {
        self.version
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Appends received bytes.
    pub fn receive(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for callers that read from a socket straight into
    /// it. Only append to it.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Octets received and not yet handed out as items.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the decoder is in the middle of a frame (some of its octets
    /// are buffered).
    pub fn is_mid_frame(&self) -> bool {
        !matches!(self.scan, Scan::Idle) || !self.buf.is_empty()
    }

    /// The next item, `Ok(None)` when more bytes are needed. After an error
    /// the stream cannot be resynchronised: every later call returns the
    /// same error.
    pub fn decode(&mut self) -> Result<Option<Decoded>, Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.step();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn step(&mut self) -> Result<Option<Decoded>, Error> {
        loop {
            match self.scan {
                Scan::Idle => match self.buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => {
                        self.buf.advance(1);
                        return Ok(Some(Decoded::HeartBeat));
                    }
                    Some(b'\r') => match self.buf.get(1) {
                        None => return Ok(None),
                        Some(b'\n') => {
                            self.buf.advance(2);
                            return Ok(Some(Decoded::HeartBeat));
                        }
                        Some(_) => return Err(Error::UnknownCommand),
                    },
                    Some(_) => {
                        self.spans.clear();
                        self.content_length = None;
                        self.scan = Scan::Head {
                            line_start: 0,
                            scanned: 0,
                            command: None,
                        };
                    }
                },
                Scan::Head {
                    line_start,
                    scanned,
                    command,
                } => {
                    // The specification's own DISCONNECT and RECEIPT examples end
                    // with NUL right after the last header, without the blank
                    // line; a header name cannot usefully start with NUL, so
                    // read that as the end of a frame with no body.
                    if let (Some(command), Some(0)) = (command, self.buf.get(line_start)) {
                        if self.content_length.is_some_and(|n| n > 0) {
                            return Err(Error::MissingNul);
                        }
                        let frame = self.finish(command, line_start, line_start)?;
                        self.scan = Scan::Idle;
                        return Ok(Some(Decoded::Frame(frame)));
                    }
                    let tail = self.buf.get(scanned..).unwrap_or_default();
                    let lf = memchr::memchr(b'\n', tail).map(|i| scanned + i);
                    // Limits are judged by the first octet position that breaks
                    // one, so that a partial line and the whole line agree.
                    let known_end = lf.unwrap_or(self.buf.len());
                    let line_over = known_end - line_start > self.limits.max_header_line;
                    let frame_over = match lf {
                        Some(lf) => lf >= self.limits.max_frame,
                        None => self.buf.len() > self.limits.max_frame,
                    };
                    match (line_over, frame_over) {
                        (true, true)
                            if line_start + self.limits.max_header_line > self.limits.max_frame =>
                        {
                            return Err(Error::FrameTooLarge {
                                limit: self.limits.max_frame,
                            });
                        }
                        (true, _) => {
                            return Err(Error::HeaderLineTooLong {
                                limit: self.limits.max_header_line,
                            });
                        }
                        (false, true) => {
                            return Err(Error::FrameTooLarge {
                                limit: self.limits.max_frame,
                            });
                        }
                        (false, false) => {}
                    }
                    let Some(lf) = lf else {
                        self.scan = Scan::Head {
                            line_start,
                            scanned: self.buf.len(),
                            command,
                        };
                        return Ok(None);
                    };
                    let mut end = lf;
                    if end > line_start && self.buf.get(end - 1) == Some(&b'\r') {
                        end -= 1;
                    }
                    let line = self.buf.get(line_start..end).unwrap_or_default();
                    match command {
                        None => {
                            let command = Command::parse(line).ok_or(Error::UnknownCommand)?;
                            self.scan = Scan::Head {
                                line_start: lf + 1,
                                scanned: lf + 1,
                                command: Some(command),
                            };
                        }
                        Some(command) if line.is_empty() => {
                            let content_length = self.content_length;
                            if let Some(len) = content_length {
                                if len > self.limits.max_body {
                                    return Err(Error::BodyTooLarge {
                                        limit: self.limits.max_body,
                                    });
                                }
                                if lf + 1 + len + 1 > self.limits.max_frame {
                                    return Err(Error::FrameTooLarge {
                                        limit: self.limits.max_frame,
                                    });
                                }
                            }
                            self.scan = Scan::Body {
                                command,
                                body_start: lf + 1,
                                content_length,
                                scanned: lf + 1,
                            };
                        }
                        Some(command) => {
                            let colon = memchr::memchr(b':', line)
                                .filter(|&c| c > 0)
                                .ok_or(Error::MalformedHeader)?;
                            if self.spans.len() == self.limits.max_headers {
                                return Err(Error::TooManyHeaders {
                                    limit: self.limits.max_headers,
                                });
                            }
                            if self.content_length.is_none()
                                && line.get(..colon) == Some(b"content-length".as_slice())
                            {
                                let value = line.get(colon + 1..).unwrap_or_default();
                                self.content_length = Some(parse_content_length(value)?);
                            }
                            self.spans.push(HeaderSpan {
                                start: line_start,
                                colon: line_start + colon,
                                end,
                            });
                            self.scan = Scan::Head {
                                line_start: lf + 1,
                                scanned: lf + 1,
                                command: Some(command),
                            };
                        }
                    }
                }
                Scan::Body {
                    command,
                    body_start,
                    content_length,
                    scanned,
                } => {
                    let body_end = match content_length {
                        Some(len) => {
                            let nul = body_start + len;
                            match self.buf.get(nul) {
                                None => return Ok(None),
                                Some(0) => nul,
                                Some(_) => return Err(Error::MissingNul),
                            }
                        }
                        None => {
                            let tail = self.buf.get(scanned..).unwrap_or_default();
                            let nul = memchr::memchr(0, tail).map(|i| scanned + i);
                            let known_end = nul.unwrap_or(self.buf.len());
                            let body_over = known_end - body_start > self.limits.max_body;
                            let frame_over = match nul {
                                Some(nul) => nul >= self.limits.max_frame,
                                None => self.buf.len() > self.limits.max_frame,
                            };
                            match (body_over, frame_over) {
                                (true, true)
                                    if body_start + self.limits.max_body
                                        > self.limits.max_frame =>
                                {
                                    return Err(Error::FrameTooLarge {
                                        limit: self.limits.max_frame,
                                    });
                                }
                                (true, _) => {
                                    return Err(Error::BodyTooLarge {
                                        limit: self.limits.max_body,
                                    });
                                }
                                (false, true) => {
                                    return Err(Error::FrameTooLarge {
                                        limit: self.limits.max_frame,
                                    });
                                }
                                (false, false) => {}
                            }
                            match nul {
                                Some(nul) => nul,
                                None => {
                                    self.scan = Scan::Body {
                                        command,
                                        body_start,
                                        content_length,
                                        scanned: self.buf.len(),
                                    };
                                    return Ok(None);
                                }
                            }
                        }
                    };
                    if body_end > body_start && !command.allows_body() {
                        return Err(Error::BodyNotAllowed { command });
                    }
                    let frame = self.finish(command, body_start, body_end)?;
                    self.scan = Scan::Idle;
                    return Ok(Some(Decoded::Frame(frame)));
                }
            }
        }
    }

    /// Cuts the complete frame `0..=body_end` out of the buffer and builds it.
    fn finish(
        &mut self,
        command: Command,
        body_start: usize,
        body_end: usize,
    ) -> Result<Frame, Error> {
        let raw = self.buf.split_to(body_end + 1).freeze();
        let escaping = command.escaping(self.version);
        // One check for all header lines: they are separated by ASCII line
        // ends, so the block is UTF-8 exactly when every line is.
        if let (Some(first), Some(last)) = (self.spans.first(), self.spans.last()) {
            let block = raw.get(first.start..last.end).unwrap_or_default();
            if simdutf8::basic::from_utf8(block).is_err() {
                return Err(Error::InvalidUtf8);
            }
        }
        let mut headers = Vec::with_capacity(self.spans.len());
        for span in &self.spans {
            let name = raw.slice(span.start..span.colon);
            if name.as_ref() == b"content-length" {
                continue;
            }
            let value = raw.slice(span.colon + 1..span.end);
            let name = crate::escape::unescape(name, escaping)?;
            let value = crate::escape::unescape(value, escaping)?;
            headers.push(Header::from_utf8_bytes(name, value));
        }
        let body = raw.slice(body_start..body_end);
        Ok(Frame::from_parts(command, headers, body))
    }
}

fn parse_content_length(value: &[u8]) -> Result<usize, Error> {
    if value.is_empty() || value.len() > 19 {
        return Err(Error::InvalidContentLength);
    }
    let mut n: usize = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(Error::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(b - b'0')))
            .ok_or(Error::InvalidContentLength)?;
    }
    Ok(n)
}
