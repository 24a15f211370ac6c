//! The packet decoder: text messages in, packets out, binary packets held
//! until their attachments have arrived.

use bytes::Bytes;

use crate::packet::decode_text;
use crate::value::check_placeholders;
use crate::{Error, Packet, ProtocolVersion, Str};

/// Decoder limits and protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// The protocol revision. Default v5.
    pub version: ProtocolVersion,
    /// Most attachments one packet may announce. Default 10, the reference
    /// parser's `maxAttachments`.
    pub max_attachments: usize,
    /// Most bytes all attachments of one packet may add up to. Default
    /// 10,000,000 (ten Engine.IO messages of the default 1 MB `maxPayload`).
    pub max_attachment_bytes: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            version: ProtocolVersion::V5,
            max_attachments: 10,
            max_attachment_bytes: 10_000_000,
        }
    }
}

#[derive(Debug)]
struct Pending {
    packet: Packet,
    expected: usize,
    bytes: usize,
}

/// Turns the messages of one connection into packets.
///
/// Feed each Engine.IO text message to [`Decoder::receive_text`] and each
/// binary one to [`Decoder::receive_binary`]; both return a packet once it
/// is complete. A binary packet (`51-[...]`) completes with its last
/// attachment; a text message arriving before that is an
/// [`Error::MissingAttachments`], as is [`Decoder::finish`] at the end of
/// the connection. After any error the decoder is reset, but the
/// connection should be closed: the reference does.
///
/// ```
/// use bytes::Bytes;
/// use duplex_socketio::{Decoder, DecoderConfig, Value};
///
/// let mut decoder = Decoder::new(DecoderConfig::default());
/// let text = Bytes::from_static(br#"51-["baz",{"_placeholder":true,"num":0}]"#);
/// assert!(decoder.receive_text(text).unwrap().is_none());
/// let packet = decoder.receive_binary(Bytes::from_static(&[1, 2, 3, 4])).unwrap().unwrap();
/// assert_eq!(packet.event_name().as_deref(), Some("baz"));
/// assert_eq!(
///     packet.value().unwrap().unwrap(),
///     Value::Array(vec!["baz".into(), Bytes::from_static(&[1, 2, 3, 4]).into()])
/// );
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    config: DecoderConfig,
    pending: Option<Pending>,
    /// The namespace of the last packet outside `/`, shared with the next
    /// packet in the same namespace instead of cut from its message.
    last_namespace: Str,
}

impl Decoder {
    /// A decoder with `config`.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            pending: None,
            last_namespace: Str::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Whether a binary packet is waiting for attachments.
    pub fn is_reconstructing(&self) -> bool {
        self.pending.is_some()
    }

    /// Decodes a text message.
    ///
    /// The text need not have been checked as UTF-8: the decoder proves
    /// it is, in the same pass that checks the payload's JSON, and rejects
    /// it with [`Error::InvalidUtf8`] otherwise. (So the UTF-8 check a
    /// WebSocket text frame or an Engine.IO text packet already had costs
    /// nothing more here for ASCII text.)
    pub fn receive_text(&mut self, text: Bytes) -> Result<Option<Packet>, Error> {
        if let Some(pending) = self.pending.take() {
            return Err(Error::MissingAttachments {
                expected: pending.expected,
                received: pending.packet.attachments.len(),
            });
        }
        let (packet, expected) = decode_text(
            text,
            self.config.version,
            self.config.max_attachments,
            &mut self.last_namespace,
        )?;
        if !packet.packet_type.is_binary() || expected == 0 {
            return self.complete(packet);
        }
        self.pending = Some(Pending {
            packet: Packet {
                attachments: Vec::with_capacity(expected),
                ..packet
            },
            expected,
            bytes: 0,
        });
        Ok(None)
    }

    /// Takes a binary message: the next attachment of the pending packet.
    pub fn receive_binary(&mut self, data: Bytes) -> Result<Option<Packet>, Error> {
        let Some(mut pending) = self.pending.take() else {
            return Err(Error::UnexpectedBinary);
        };
        pending.bytes = pending.bytes.saturating_add(data.len());
        if pending.bytes > self.config.max_attachment_bytes {
            return Err(Error::AttachmentsTooLarge {
                limit: self.config.max_attachment_bytes,
            });
        }
        pending.packet.attachments.push(data);
        if pending.packet.attachments.len() < pending.expected {
            self.pending = Some(pending);
            return Ok(None);
        }
        self.complete(pending.packet)
    }

    fn complete(&mut self, packet: Packet) -> Result<Option<Packet>, Error> {
        if packet.packet_type.is_binary() {
            if let Some(data) = &packet.data {
                check_placeholders(data.as_bytes(), packet.attachments.len())?;
            }
        }
        Ok(Some(packet))
    }

    /// The connection ended: an error if a packet still awaited attachments.
    pub fn finish(&mut self) -> Result<(), Error> {
        match self.pending.take() {
            None => Ok(()),
            Some(p) => Err(Error::MissingAttachments {
                expected: p.expected,
                received: p.packet.attachments.len(),
            }),
        }
    }
}
