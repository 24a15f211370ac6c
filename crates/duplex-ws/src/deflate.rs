//! permessage-deflate (RFC 7692): negotiation of the four parameters, and
//! the per-message compressor and decompressor.
//!
//! Memory per connection: with context takeover, the compressor keeps its
//! window and hash tables between messages (about 2^(w+2) + 128 KiB for
//! window bits w: 256 KiB at w = 15, 130 KiB at w = 9) and the decompressor
//! its 32 KiB window. With `no_context_takeover` on both sides the state is
//! reset after each message, but the buffers stay allocated while the
//! connection lives.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::decoder::Role;
use crate::handshake::HandshakeError;

/// The extension token.
pub(crate) const EXTENSION_NAME: &str = "permessage-deflate";

/// The 4 bytes a sync flush ends with, removed on send and restored on
/// receipt (RFC 7692 section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What this endpoint is willing to agree to, and how it compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Ask (client) or require (server) that the server reset its
    /// compression context after every message. Default off.
    pub server_no_context_takeover: bool,
    /// Ask (server) or promise (client) that the client reset its context
    /// after every message. Default off.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window (9-15 bits) the server may use. Default 15.
    pub server_max_window_bits: u8,
    /// The largest window (9-15 bits) the client may use. Default 15.
    pub client_max_window_bits: u8,
    /// zlib compression level, 0-9. Default 1 (fastest): chat-sized JSON
    /// gains little from more effort, and latency matters more.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed. Default 0 (every
    /// message is compressed).
    pub compress_threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
            compress_threshold: 0,
        }
    }
}

/// The parameters both ends agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The server's compression window, 9-15 bits.
    pub server_max_window_bits: u8,
    /// The client's compression window, 9-15 bits.
    pub client_max_window_bits: u8,
    /// The local compression level.
    pub level: u32,
    /// The local threshold below which messages go uncompressed.
    pub compress_threshold: usize,
}

/// One extension offer or response, parsed: `None` fields were absent;
/// `Some(None)` is a window-bits parameter without a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parameters {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

/// Parses one `permessage-deflate; ...` element. `None` if it names another
/// extension or breaks the parameter rules (unknown or repeated parameter,
/// a value where none belongs, window bits outside 8-15): such an offer is
/// declined, such a response fails the handshake.
fn parse(element: &str) -> Option<Parameters> {
    let mut parts = element.split(';');
    if !parts.next()?.trim().eq_ignore_ascii_case(EXTENSION_NAME) {
        return None;
    }
    let mut p = Parameters::default();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (part.trim(), None),
        };
        let bits = || -> Option<Option<u8>> {
            match value {
                None => Some(None),
                Some(v)
                    if !v.is_empty()
                        && v.bytes().all(|b| b.is_ascii_digit())
                        && !v.starts_with('0') =>
                {
                    let n: u8 = v.parse().ok()?;
                    (8..=15).contains(&n).then_some(Some(n))
                }
                Some(_) => None,
            }
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() && !p.server_no_context_takeover => {
                p.server_no_context_takeover = true;
            }
            "client_no_context_takeover" if value.is_none() && !p.client_no_context_takeover => {
                p.client_no_context_takeover = true;
            }
            "server_max_window_bits" if p.server_max_window_bits.is_none() => {
                // A value is required for this one.
                p.server_max_window_bits = Some(Some(bits()??));
            }
            "client_max_window_bits" if p.client_max_window_bits.is_none() => {
                p.client_max_window_bits = Some(bits()?);
            }
            _ => return None,
        }
    }
    Some(p)
}

impl DeflateConfig {
    /// The client's offer, for `Sec-WebSocket-Extensions`.
    pub fn client_offer(&self) -> String {
        let mut offer = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            offer.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits.max(9)
            ));
        }
        if self.client_max_window_bits < 15 {
            offer.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits.max(9)
            ));
        } else {
            // Tell the server it may limit our window.
            offer.push_str("; client_max_window_bits");
        }
        offer
    }

    /// Server side: the first acceptable `permessage-deflate` offer among
    /// `offers` (one string per offer, as `Request::extension_offers`
    /// gives them), with the response header value to send.
    pub fn negotiate(&self, offers: &[String]) -> Option<(DeflateParams, String)> {
        offers
            .iter()
            .filter_map(|o| parse(o))
            .find_map(|p| self.accept(p))
    }

    fn accept(&self, offer: Parameters) -> Option<(DeflateParams, String)> {
        // zlib cannot compress with a 256-byte window (it would silently use
        // 512), so an offer that demands 8 for our side is declined and the
        // next offer tried.
        let server_bits = match offer.server_max_window_bits {
            Some(Some(8)) => return None,
            Some(Some(n)) => n.min(self.server_max_window_bits.max(9)),
            _ => self.server_max_window_bits.clamp(9, 15),
        };
        let client_bits = match offer.client_max_window_bits {
            // The client did not say it can limit its window: it uses 15.
            None => 15,
            Some(None) => self.client_max_window_bits.clamp(9, 15),
            Some(Some(n)) => n.min(self.client_max_window_bits.clamp(9, 15)),
        };
        let params = DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
            level: self.level,
            compress_threshold: self.compress_threshold,
        };
        let mut response = String::from(EXTENSION_NAME);
        if params.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if offer.server_max_window_bits.is_some() || server_bits < 15 {
            response.push_str(&format!("; server_max_window_bits={server_bits}"));
        }
        if offer.client_max_window_bits.is_some() && client_bits < 15 {
            response.push_str(&format!("; client_max_window_bits={client_bits}"));
        }
        Some((params, response))
    }

    /// Client side: checks the server's answer (the extensions of the 101)
    /// against the offer this config made. `Ok(None)`: the server declined.
    pub fn accept_response(
        &self,
        extensions: &[String],
    ) -> Result<Option<DeflateParams>, HandshakeError> {
        let mut agreed = None;
        for ext in extensions {
            let name = ext.split(';').next().unwrap_or_default().trim();
            if !name.eq_ignore_ascii_case(EXTENSION_NAME) {
                continue;
            }
            if agreed.is_some() {
                return Err(HandshakeError::InvalidExtensionResponse);
            }
            let p = parse(ext).ok_or(HandshakeError::InvalidExtensionResponse)?;
            let server_bits = match p.server_max_window_bits {
                Some(Some(n))
                    if self.server_max_window_bits < 15
                        && n > self.server_max_window_bits.max(9) =>
                {
                    return Err(HandshakeError::InvalidExtensionResponse);
                }
                Some(Some(n)) => n,
                _ if self.server_max_window_bits < 15 => {
                    return Err(HandshakeError::InvalidExtensionResponse);
                }
                _ => 15,
            };
            let client_bits = match p.client_max_window_bits {
                // We cannot compress with a 256-byte window: see `accept`.
                Some(Some(8)) | Some(None) => return Err(HandshakeError::InvalidExtensionResponse),
                Some(Some(n)) if n > self.client_max_window_bits.max(9) => {
                    return Err(HandshakeError::InvalidExtensionResponse);
                }
                Some(Some(n)) => n,
                None => self.client_max_window_bits.clamp(9, 15),
            };
            if self.server_no_context_takeover && !p.server_no_context_takeover {
                return Err(HandshakeError::InvalidExtensionResponse);
            }
            agreed = Some(DeflateParams {
                server_no_context_takeover: p.server_no_context_takeover,
                client_no_context_takeover: p.client_no_context_takeover
                    || self.client_no_context_takeover,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
                level: self.level,
                compress_threshold: self.compress_threshold,
            });
        }
        Ok(agreed)
    }
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// Not valid DEFLATE data.
    Corrupt,
    /// The output passed the message size limit.
    TooLarge,
}

/// The compressor and decompressor of one connection.
pub(crate) struct DeflateCodec {
    compress: Compress,
    decompress: Decompress,
    reset_compressor: bool,
    reset_decompressor: bool,
    threshold: usize,
    /// Compressed bytes of the message being inflated so far.
    message_input: usize,
}

impl std::fmt::Debug for DeflateCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateCodec").finish_non_exhaustive()
    }
}

impl DeflateCodec {
    /// The codec for `role` under the agreed parameters.
    pub(crate) fn new(role: Role, params: &DeflateParams) -> Self {
        let (own_bits, own_reset, peer_reset) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_no_context_takeover,
            ),
        };
        Self {
            compress: Compress::new_with_window_bits(
                Compression::new(params.level.min(9)),
                false,
                own_bits.clamp(9, 15),
            ),
            // A larger window than the peer's always inflates its output.
            decompress: Decompress::new_with_window_bits(false, 15),
            reset_compressor: own_reset,
            reset_decompressor: peer_reset,
            threshold: params.compress_threshold,
            message_input: 0,
        }
    }

    /// Whether a message of `len` bytes should be compressed.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Compresses one whole message into `out` (without the sync-flush
    /// tail). Returns false when the message should rather go uncompressed:
    /// compression made it no smaller and, the context being reset after
    /// every message, skipping it leaves the two ends' windows in step.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        out.reserve(input.len() / 2 + 16);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 16 {
                out.reserve(out.capacity().max(64));
            }
            let before = self.compress.total_in();
            let rest = input.get(consumed..).unwrap_or_default();
            if self
                .compress
                .compress_vec(rest, out, FlushCompress::Sync)
                .is_err()
            {
                // zlib only fails on misuse (a bad flush order); nothing
                // input can cause. Fall back to a fresh state and retry.
                self.compress.reset();
                out.clear();
                consumed = 0;
                continue;
            }
            consumed += (self.compress.total_in() - before) as usize;
            if consumed >= input.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // zlib-rs emits nothing for a flush with no new input; an empty
            // message is one 0x00 byte on the wire (RFC 7692 section
            // 7.2.3.6), which the peer's restored tail completes into an
            // empty stored block.
            out.push(0x00);
        }
        if self.reset_compressor {
            self.compress.reset();
            return out.len() < input.len();
        }
        true
    }

    /// Inflates one frame's worth of a compressed message, appending to
    /// `out` but never past `limit` bytes in total. `last` restores the
    /// tail and ends the message.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        self.inflate(input, out, limit)?;
        self.message_input += input.len();
        if last {
            // Some peers send an empty message as an empty payload; the tail
            // would then open a stored block that never ends.
            if self.message_input != 0 {
                self.inflate(&TAIL, out, limit)?;
            }
            self.message_input = 0;
            if self.reset_decompressor {
                self.decompress.reset(false);
            }
        }
        Ok(())
    }

    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 1024 {
                // Grow geometrically, but never more than one byte past the
                // limit, so that a bomb is caught with bounded memory.
                let room = (out.capacity().max(4096))
                    .min(limit.saturating_add(1).saturating_sub(out.len()));
                if room == 0 {
                    return Err(InflateError::TooLarge);
                }
                // Exact, because `reserve` may round up past the limit.
                out.reserve_exact(room);
            }
            let before_in = self.decompress.total_in();
            let before_out = out.len();
            let rest = input.get(consumed..).unwrap_or_default();
            let status = self
                .decompress
                .decompress_vec(rest, out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            consumed += (self.decompress.total_in() - before_in) as usize;
            if out.len() > limit {
                return Err(InflateError::TooLarge);
            }
            let progressed =
                consumed > 0 && self.decompress.total_in() != before_in || out.len() != before_out;
            let done = consumed >= input.len() && out.len() < out.capacity();
            match status {
                // A final block inside a message: what follows would be
                // garbage, and the next message needs a live stream.
                Status::StreamEnd => return Err(InflateError::Corrupt),
                _ if done => return Ok(()),
                _ if !progressed && out.len() < out.capacity() => {
                    return Err(InflateError::Corrupt);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(s: &[&str]) -> Vec<String> {
        s.iter().map(|o| (*o).to_owned()).collect()
    }

    #[test]
    fn parses_parameters_and_refuses_bad_ones() {
        assert_eq!(parse("permessage-deflate"), Some(Parameters::default()));
        let p = parse("Permessage-Deflate; client_max_window_bits; server_max_window_bits=\"10\"")
            .unwrap();
        assert_eq!(p.client_max_window_bits, Some(None));
        assert_eq!(p.server_max_window_bits, Some(Some(10)));
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_takes_the_first_acceptable_offer() {
        let config = DeflateConfig::default();
        // Autobahn 13.7's offers: the first asks for a window we can use.
        let (params, response) = config
            .negotiate(&offers(&[
                "permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=9",
                "permessage-deflate; client_max_window_bits",
            ]))
            .unwrap();
        assert_eq!(
            response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9"
        );
        assert_eq!(params.server_max_window_bits, 9);
        assert!(params.server_no_context_takeover);
        // An offer demanding a 256-byte window is skipped for the next one.
        let (params, response) = config
            .negotiate(&offers(&[
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate",
            ]))
            .unwrap();
        assert_eq!(response, "permessage-deflate");
        assert_eq!(params.server_max_window_bits, 15);
        assert!(
            config
                .negotiate(&offers(&["permessage-deflate; bogus"]))
                .is_none()
        );
    }

    #[test]
    fn client_checks_the_answer() {
        let config = DeflateConfig::default();
        let ok = config
            .accept_response(&offers(&["permessage-deflate; client_max_window_bits=9"]))
            .unwrap()
            .unwrap();
        assert_eq!(ok.client_max_window_bits, 9);
        assert_eq!(config.accept_response(&[]).unwrap(), None);
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; unknown",
        ] {
            assert_eq!(
                config.accept_response(&offers(&[bad])),
                Err(HandshakeError::InvalidExtensionResponse),
                "{bad}"
            );
        }
        let strict = DeflateConfig {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        assert!(
            strict
                .accept_response(&offers(&["permessage-deflate"]))
                .is_err()
        );
        assert!(
            strict
                .accept_response(&offers(&[
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"
                ]))
                .is_err()
        );
    }

    #[test]
    fn rfc_7692_example_hello() {
        // Section 7.2.3.1: "Hello" compressed without context takeover.
        let params = DeflateConfig::default()
            .negotiate(&offers(&["permessage-deflate"]))
            .unwrap()
            .0;
        let mut codec = DeflateCodec::new(Role::Server, &params);
        let mut out = Vec::new();
        codec
            .decompress(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                true,
                &mut out,
                1000,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
        // Section 7.2.3.2: the second "Hello" with context takeover.
        out.clear();
        codec
            .decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, &mut out, 1000)
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn round_trip_with_and_without_context_takeover_for_every_window() {
        for bits in 9..=15u8 {
            for reset in [false, true] {
                let params = DeflateParams {
                    server_no_context_takeover: reset,
                    client_no_context_takeover: reset,
                    server_max_window_bits: bits,
                    client_max_window_bits: bits,
                    level: 1,
                    compress_threshold: 0,
                };
                let mut sender = DeflateCodec::new(Role::Server, &params);
                let mut receiver = DeflateCodec::new(Role::Client, &params);
                for i in 0..6 {
                    // Message 2 is empty: the encoder's flush then has no new input.
                    let message = match i {
                        2 => String::new(),
                        _ => format!(
                            "{{\"user\":\"ann\",\"n\":{i},\"text\":\"{}\"}}",
                            "hello ".repeat(i * 50)
                        ),
                    };
                    let mut wire = Vec::new();
                    sender.compress(message.as_bytes(), &mut wire);
                    let mut back = Vec::new();
                    receiver
                        .decompress(&wire, true, &mut back, 1 << 20)
                        .unwrap();
                    assert_eq!(back, message.as_bytes(), "bits {bits} reset {reset}");
                }
            }
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let params = DeflateConfig::default()
            .negotiate(&offers(&["permessage-deflate"]))
            .unwrap()
            .0;
        let mut sender = DeflateCodec::new(Role::Client, &params);
        let mut wire = Vec::new();
        sender.compress(&vec![0u8; 10 << 20], &mut wire);
        assert!(wire.len() < (10 << 20) / 100, "{} bytes", wire.len());
        let mut receiver = DeflateCodec::new(Role::Server, &params);
        let mut out = Vec::new();
        assert_eq!(
            receiver.decompress(&wire, true, &mut out, 1 << 20),
            Err(InflateError::TooLarge)
        );
        assert!(
            out.capacity() <= (1 << 20) + 4096,
            "capacity {}",
            out.capacity()
        );
        let mut receiver = DeflateCodec::new(Role::Server, &params);
        assert_eq!(
            receiver.decompress(&[0xff, 0xff, 0xff], true, &mut Vec::new(), 1000),
            Err(InflateError::Corrupt)
        );
    }
}
