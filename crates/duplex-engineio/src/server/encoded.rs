//! The WebSocket message of the text the application sends to many
//! sessions at once, made once.

use crate::{Packet, ProtocolVersion, Utf8Bytes, WsMessage};

/// A broadcast hands the server the same text, one shared buffer, for
/// every recipient, and each recipient's WebSocket message is that text
/// behind a `4`: made once per broadcast rather than once per recipient,
/// it saves an allocation, a copy and a free per recipient (issue #19).
///
/// A text is recognised by its buffer (address and length), never by its
/// content. The message is kept only from the second send of the same
/// buffer, so that a server sending each text once (an echo) pays no
/// clone for it, and only until the server's transmits are all handed
/// out ([`EncodedCache::clear`]): it keeps no memory between bursts.
#[derive(Debug, Default)]
pub(crate) struct EncodedCache {
    /// Address and length of the last text encoded: a second send of it
    /// starts the caching. Only compared, never read through: the buffer
    /// may be gone (then a new text at the same place is merely cached,
    /// after being encoded itself).
    last: (usize, usize),
    /// The text kept alive (so its address names it while cached), its
    /// version and its message.
    kept: Option<(Utf8Bytes, ProtocolVersion, WsMessage)>,
}

impl EncodedCache {
    /// `packet` as a WebSocket message for a `version` session.
    pub(crate) fn websocket_message(
        &mut self,
        packet: &Packet,
        version: ProtocolVersion,
    ) -> WsMessage {
        let Packet::Message(text) = packet else {
            return packet.to_websocket(version);
        };
        if let Some((kept, v, message)) = &self.kept {
            if *v == version && same_buffer(kept, text) {
                return message.clone();
            }
        }
        let message = packet.to_websocket(version);
        let at = address(text);
        if at == self.last {
            self.kept = Some((text.clone(), version, message.clone()));
        } else {
            self.last = at;
            self.kept = None;
        }
        message
    }

    /// Lets the kept text and message go.
    pub(crate) fn clear(&mut self) {
        self.kept = None;
    }
}

fn address(text: &Utf8Bytes) -> (usize, usize) {
    (text.as_bytes().as_ptr() as usize, text.len())
}

fn same_buffer(a: &Utf8Bytes, b: &Utf8Bytes) -> bool {
    address(a) == address(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Utf8Bytes {
        Utf8Bytes::from(t.to_owned())
    }

    fn bytes_of(m: &WsMessage) -> (usize, usize) {
        match m {
            WsMessage::Text(t) => address(t),
            WsMessage::Binary(b) => (b.as_ptr() as usize, b.len()),
        }
    }

    #[test]
    fn one_buffer_sent_again_shares_one_message() {
        let mut cache = EncodedCache::default();
        let shared = Packet::Message(text("hello"));
        let v = ProtocolVersion::V4;
        let first = cache.websocket_message(&shared, v);
        let second = cache.websocket_message(&shared, v);
        let third = cache.websocket_message(&shared, v);
        assert_eq!(first, WsMessage::Text(text("4hello")));
        assert_eq!(second, first);
        assert_eq!(third, first);
        // From the second send on, the same buffer.
        assert_eq!(bytes_of(&second), bytes_of(&third));
        // An equal text in another buffer is encoded on its own.
        let other = cache.websocket_message(&Packet::Message(text("hello")), v);
        assert_eq!(other, first);
        assert_ne!(bytes_of(&other), bytes_of(&third));
        // Another version is not served the cached message: a text's
        // message reads the same in v3, so only its buffer tells (review9b:
        // comparing the bytes alone could not fail).
        cache.websocket_message(&shared, v);
        let kept = cache.websocket_message(&shared, v);
        assert_eq!(
            bytes_of(&cache.websocket_message(&shared, v)),
            bytes_of(&kept)
        );
        let v3 = cache.websocket_message(&shared, ProtocolVersion::V3);
        assert_eq!(v3, first);
        assert_ne!(bytes_of(&v3), bytes_of(&kept));
        cache.clear();
        assert!(cache.kept.is_none());
        assert_eq!(cache.websocket_message(&shared, v), first);
        assert_eq!(
            cache.websocket_message(&Packet::ping(), v),
            WsMessage::Text(text("2"))
        );
    }
}
