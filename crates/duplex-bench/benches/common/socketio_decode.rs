//! The Socket.IO decode workloads and the two contenders' per-packet work,
//! shared by the `socketio` bench and the `socketio_count` probe so that
//! both measure the same thing: each decode starts from a fresh copy of the
//! received text and yields (namespace length, ack id).

use bytes::Bytes;
use duplex_socketio::Decoder;
use socketioxide_core::Str;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;

/// The workloads: (name, short name for the probe's command line, text).
pub(crate) const PACKETS: [(&str, &str, &str); 3] = [
    ("small event", "small", r#"2["message",1,"2",{"3":[true]}]"#),
    (
        "chat event with ack on a namespace",
        "chat",
        r#"2/chat,17["message",{"user":"ann","room":"general","text":"hello there, how is everyone doing today?"}]"#,
    ),
    (
        "ack",
        "ack",
        r#"3/chat,17[{"ok":true,"id":"m-123456","ts":1700000000}]"#,
    ),
];

/// (namespace length, ack id) as duplex sees the packet.
pub(crate) fn duplex(decoder: &mut Decoder, wire: &str) -> (usize, Option<u64>) {
    let packet = decoder
        .receive_text(Bytes::copy_from_slice(wire.as_bytes()))
        .expect("valid")
        .expect("whole");
    (packet.namespace.len(), packet.ack_id)
}

/// (namespace length, ack id) as socketioxide's parser sees the packet.
pub(crate) fn socketioxide(
    config: &ParseConfig,
    state: &ParserState,
    wire: &str,
) -> (usize, Option<u64>) {
    let packet = CommonParser
        .decode_str(config, state, Str::from(wire.to_owned()))
        .expect("valid");
    let ack = match &packet.inner {
        PacketData::Event(_, ack) => ack.map(|a| a as u64),
        PacketData::EventAck(_, ack) => Some(*ack as u64),
        _ => None,
    };
    (packet.ns.len(), ack)
}
