//! Printing what arrives: plain lines, or one JSON object a line.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Map, Value, json};

use super::{Encoding, Failure};

/// Whether the interactive prompt (`> ` on stderr) is on the screen now,
/// waiting for a line: what is printed meanwhile first erases it, then
/// shows it again below.
static PROMPT_SHOWN: AtomicBool = AtomicBool::new(false);

/// The interactive prompt.
const PROMPT: &str = "> ";

/// Where `duplex connect` writes: data on stdout, connection news on
/// stderr (or both as JSON objects on stdout with `--jsonl`).
#[derive(Debug)]
pub(crate) struct Out {
    jsonl: bool,
    quiet: bool,
}

impl Out {
    /// An output with `--jsonl` and `--quiet` as given.
    pub(crate) fn new(jsonl: bool, quiet: bool) -> Out {
        Out { jsonl, quiet }
    }

    /// Whether records are JSON objects.
    pub(crate) fn jsonl(&self) -> bool {
        self.jsonl
    }

    /// Whether to show a prompt for stdin lines: a person at a terminal
    /// (stdin and stderr both one), and neither --quiet nor --jsonl.
    pub(crate) fn interactive(&self) -> bool {
        !self.jsonl
            && !self.quiet
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal()
    }

    /// Shows the prompt (stdin is about to be read).
    pub(crate) fn show_prompt(&self) {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{PROMPT}");
        let _ = stderr.flush();
        PROMPT_SHOWN.store(true, Ordering::Relaxed);
    }

    /// The user ended a line: the prompt is no longer on the last line.
    pub(crate) fn prompt_answered(&self) {
        PROMPT_SHOWN.store(false, Ordering::Relaxed);
    }

    /// No more lines will be read (Ctrl-C, end of input): a prompt on the
    /// screen is erased and not shown again, so that what is printed last,
    /// and the shell's own prompt after the exit, start on a clean line.
    pub(crate) fn drop_prompt(&self) {
        if PROMPT_SHOWN.swap(false, Ordering::Relaxed) {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
        }
    }

    /// Something that arrived: `plain` as a line, or `fields` with `type`
    /// and `timestamp` added.
    pub(crate) fn data(&self, kind: &str, fields: Value, plain: &str) {
        around_prompt(|| {
            if self.jsonl {
                self.record(kind, fields);
            } else {
                line_to_stdout(plain);
            }
        });
    }

    /// News about the connection (opened, closed, reconnecting): on stderr
    /// unless `--quiet`, or a record on stdout with `--jsonl`.
    pub(crate) fn news(&self, kind: &str, fields: Value, plain: &str) {
        around_prompt(|| {
            if self.jsonl {
                self.record(kind, fields);
            } else if !self.quiet {
                eprintln!("{plain}");
            }
        });
    }

    /// A problem that does not end the connection (a line that could not be
    /// sent): always one line on stderr.
    pub(crate) fn warn(&self, msg: &str) {
        around_prompt(|| eprintln!("duplex connect: {msg}"));
    }

    fn record(&self, kind: &str, fields: Value) {
        let mut object = Map::new();
        object.insert("type".into(), kind.into());
        match fields {
            Value::Object(map) => object.extend(map),
            Value::Null => {}
            other => {
                object.insert("data".into(), other);
            }
        }
        object.insert("timestamp".into(), json!(timestamp()));
        line_to_stdout(&Value::Object(object).to_string());
    }
}

/// Runs `print` on a line of its own: a prompt on the screen is erased
/// first (carriage return, erase line) and shown again after.
fn around_prompt(print: impl FnOnce()) {
    let shown = PROMPT_SHOWN.swap(false, Ordering::Relaxed);
    if shown {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[K");
        let _ = stderr.flush();
    }
    print();
    if shown {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{PROMPT}");
        let _ = stderr.flush();
        PROMPT_SHOWN.store(true, Ordering::Relaxed);
    }
}

/// Seconds since the Unix epoch, to the millisecond.
fn timestamp() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_millis() as f64) / 1000.0
}

/// Writes one line and flushes, so that a pipe sees every message as it
/// arrives. A closed stdout (the reader went away) is not worth failing on.
fn line_to_stdout(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// `bytes` written in `encoding`.
pub(crate) fn encode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        Encoding::Hex => {
            let mut s = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                s.push_str(&format!("{b:02x}"));
            }
            s
        }
    }
}

/// `text` read in `encoding` (surrounding whitespace ignored).
pub(crate) fn decode(text: &str, encoding: Encoding) -> Result<Vec<u8>, Failure> {
    let text = text.trim();
    match encoding {
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| Failure::usage(format!("not base64: {e}"))),
        Encoding::Hex => {
            if !text.len().is_multiple_of(2) {
                return Err(Failure::usage("not hex: odd number of digits"));
            }
            (0..text.len())
                .step_by(2)
                .map(|i| {
                    text.get(i..i + 2)
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                        .ok_or_else(|| Failure::usage(format!("not hex: {text:?}")))
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_round_trip() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        for encoding in [Encoding::Base64, Encoding::Hex] {
            let text = encode(&bytes, encoding);
            assert_eq!(decode(&text, encoding).unwrap(), bytes);
        }
        assert_eq!(encode(&bytes, Encoding::Hex), "00017f80ff");
        assert_eq!(decode("00FF", Encoding::Hex).unwrap(), [0, 255]);
        assert!(decode("abc", Encoding::Hex).is_err());
        assert!(decode("zz", Encoding::Hex).is_err());
        assert!(decode("é1", Encoding::Hex).is_err());
        assert!(decode("***", Encoding::Base64).is_err());
    }
}
