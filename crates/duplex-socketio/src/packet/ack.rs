//! An ACK encoded straight from its arguments: the header and the JSON
//! written into one buffer, where building a [`Packet`] and encoding it
//! wrote the JSON into a buffer of its own first and then copied it behind
//! the header (two allocations and a copy more per acked event, and the
//! text checked as UTF-8 a second time).

use bytes::Bytes;

use super::{EncodedPacket, Packet, PacketType, check_namespace};
use crate::{Error, Str, Value};

/// An ACK encoded once, outside any lock, for
/// [`Server::send_ack`](crate::server::Server::send_ack), which checks
/// that its namespace is connected on the session before queuing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedAck {
    pub(crate) namespace: Str,
    pub(crate) packet: EncodedPacket,
}

impl EncodedAck {
    /// The namespace the ACK is for.
    pub fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// The encoded packet: the same bytes as [`Packet::ack`] with the
    /// arguments encoded by [`Value::encode`], then [`Packet::encode`].
    pub fn packet(&self) -> &EncodedPacket {
        &self.packet
    }
}

impl Packet {
    /// Encodes the ACK of `ack_id` in `namespace` answering with `args`
    /// (binary values become attachments, as [`Packet::ack_with`] does).
    /// [`Error::InvalidNamespace`] for a namespace that does not start
    /// with `/` or holds a comma.
    pub fn encode_ack(namespace: Str, ack_id: u64, args: &[Value]) -> Result<EncodedAck, Error> {
        check_namespace(&namespace)?;
        let default = namespace.as_str() == super::DEFAULT_NAMESPACE;
        // The header, and room for a short answer: one allocation in the
        // usual case.
        let mut out = Vec::with_capacity(64 + if default { 0 } else { namespace.len() });
        out.push(b'0' + PacketType::Ack.id());
        if !default {
            out.extend_from_slice(namespace.as_bytes());
            out.push(b',');
        }
        duplex_core::put_decimal(&mut out, ack_id);
        let header = out.len();
        let attachments = Value::encode_array_into(args, &mut out);
        let packet = if attachments.is_empty() {
            EncodedPacket {
                // ASCII digits, the namespace (a `Str`) and JSON, which
                // serde_json writes as UTF-8 only.
                text: Str::from_validated(Bytes::from(out)),
                attachments,
            }
        } else {
            // A BINARY_ACK's header counts the attachments before the
            // namespace: written again in front of the JSON (rare).
            let json = Bytes::from(out).slice(header..);
            Packet::ack(
                namespace.clone(),
                Str::from_validated(json),
                attachments,
                ack_id,
            )?
            .encode()
        };
        Ok(EncodedAck { namespace, packet })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_NAMESPACE;

    /// The same bytes as the two-step way, for the default namespace and
    /// another, with and without binary attachments.
    #[test]
    fn encode_ack_writes_what_ack_then_encode_writes() {
        let cases: Vec<Vec<Value>> = vec![
            vec![],
            vec![Value::from("xxxxxxxxxxxxxxxx")],
            vec![Value::from(1u32), Value::Null, Value::from("é\"\n")],
            vec![
                Value::from(Bytes::from_static(b"\x00\x01")),
                Value::from("a"),
            ],
            vec![Value::Array(vec![Value::from(Bytes::from_static(b"b"))]); 11],
            vec![Value::from("y"); 40],
        ];
        for namespace in [DEFAULT_NAMESPACE, "/admin"] {
            for args in &cases {
                for id in [0, 7, 12345, u64::MAX] {
                    let expected = Packet::ack_with(namespace, args, id).unwrap().encode();
                    let encoded = Packet::encode_ack(Str::from(namespace), id, args).unwrap();
                    assert_eq!(encoded.packet(), &expected, "{namespace} {id} {args:?}");
                    assert_eq!(encoded.namespace(), namespace);
                }
            }
        }
    }

    #[test]
    fn encode_ack_refuses_a_namespace_the_packet_would_refuse() {
        for namespace in ["admin", "/a,b", ""] {
            assert!(matches!(
                Packet::encode_ack(Str::from(namespace), 1, &[]),
                Err(Error::InvalidNamespace)
            ));
        }
    }
}
