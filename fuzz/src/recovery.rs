//! Socket.IO connection state recovery: the server machine with recovery
//! on, fed CONNECT auth whose pid and offset are real (harvested from what
//! the server wrote), mangled or arbitrary bytes, among emits, room
//! changes, cuts for every reason and clock jumps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_socketio::recovery::RecoveryConfig;
use duplex_socketio::server::{DisconnectReason, Server, ServerConfig, ServerEvent, Transmit};
use duplex_socketio::{Broadcast, Packet, ProtocolVersion, Value};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::input::Input;

const KEEP: Duration = Duration::from_secs(2);
const ROOMS: [&str; 2] = ["r0", "r1"];
const REASONS: [DisconnectReason; 5] = [
    DisconnectReason::TransportClose,
    DisconnectReason::PingTimeout,
    DisconnectReason::ParseError,
    DisconnectReason::ServerShuttingDown,
    DisconnectReason::ClientNamespaceDisconnect,
];

/// A JSON string literal of arbitrary bytes (lossy UTF-8).
fn json_string(bytes: &[u8]) -> String {
    json_str(&String::from_utf8_lossy(bytes))
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The program: a settings byte (bits 0-1: max packets - 1, bits 2-3: max
/// sessions - 1, bit 4: skip middlewares), then commands of an op byte and
/// a session byte (0-3): 0 open; 1 CONNECT with auth built from the next
/// bytes (pid: a known one, raw bytes, a number or nothing; offset the
/// same); 2 arbitrary text; 3 emit to the session's socket; 4 broadcast
/// (byte: bit 0 to a room, bit 1 except it); 5 join; 6 leave; 7 the
/// transport closed (reason byte); 8 advance the clock (tens of ms); 9
/// set data. Each CONNECT request is answered by the next byte: even
/// accept, odd reject; each probe of a session whose connected socket a
/// CONNECT names too: even it shows life, odd it closes as a ping timeout.
///
/// Checks: no panic; no CONNECT_ERROR but the ones rejected; a restored
/// socket has its session's id and no other connected socket shares it;
/// the store within its bounds; after `handle_timeout(now)` no deadline
/// is due; once every session closed and the clock passed the duration,
/// nothing is kept and no timer is left.
pub fn server(data: &[u8]) {
    run(data);
}

/// The body of [`server`]; returns how many sockets were restored.
fn run(data: &[u8]) -> usize {
    let mut input = Input(data);
    let mut restored = 0usize;
    let settings = input.byte();
    let recovery = RecoveryConfig {
        max_disconnection_duration: KEEP,
        max_packets: usize::from(settings & 3) + 1,
        max_sessions: usize::from((settings >> 2) & 3) + 1,
        skip_middlewares: settings & 16 != 0,
        max_room_changes: 2,
        max_held_connects: 2,
    };
    let mut s: Server<u8, ()> = Server::new(
        ServerConfig::default()
            .with_rng(StdRng::seed_from_u64(1))
            .with_recovery(recovery.clone()),
    );
    let mut now = Instant::now();
    let mut pids: Vec<String> = Vec::new();
    let mut offsets: Vec<String> = Vec::new();
    let mut rejected = 0usize;
    let mut errors = 0usize;

    while !input.is_empty() {
        let op = input.byte() % 10;
        let session = input.byte() % 4;
        match op {
            0 => s.open(session, ProtocolVersion::V5, now),
            1 => {
                let field = |name: &str, known: &[String], input: &mut Input<'_>| {
                    let how = input.byte();
                    let value = match how % 4 {
                        0 => known
                            .get(usize::from(input.byte()) % known.len().max(1))
                            .map(|k| json_str(k)),
                        1 => Some(json_string(input.sized())),
                        2 => Some(u32::from(input.byte()).to_string()),
                        _ => None,
                    };
                    value.map(|v| format!("\"{name}\":{v}"))
                };
                let fields: Vec<String> = [
                    field("pid", &pids, &mut input),
                    field("offset", &offsets, &mut input),
                ]
                .into_iter()
                .flatten()
                .collect();
                let text = format!("0{{{}}}", fields.join(","));
                s.handle_text(&session, Bytes::from(text));
            }
            2 => s.handle_text(&session, Bytes::copy_from_slice(input.sized())),
            3 => {
                if let Ok(p) = Packet::event_with("/", "e", &[Value::from(1)], None) {
                    let _ = s.send(&session, &p);
                }
            }
            4 => {
                let how = input.byte();
                let room = ROOMS[usize::from(how >> 2) % ROOMS.len()];
                let mut target = Broadcast::all();
                if how & 1 != 0 {
                    target = target.and_to(room);
                }
                if how & 2 != 0 {
                    target = target.except_room(room);
                }
                if let Ok(p) = Packet::event_with("/", "b", &[Value::from(2)], None) {
                    s.broadcast("/", &target, &p);
                }
            }
            op @ (5 | 6) => {
                let room = ROOMS[usize::from(input.byte()) % ROOMS.len()];
                if let Some(id) = s.socket_id(&session, "/").cloned() {
                    if op == 5 {
                        s.join("/", &id, [room]);
                    } else {
                        s.leave("/", &id, room);
                    }
                }
            }
            7 => {
                let why = REASONS[usize::from(input.byte()) % REASONS.len()];
                s.closed(&session, why);
            }
            8 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                s.handle_timeout(now);
                assert!(s.poll_timeout().is_none_or(|at| at > now), "a timer passed");
            }
            _ => {
                if let Some(id) = s.socket_id(&session, "/").cloned() {
                    s.set_data("/", &id, Value::from(i64::from(input.byte())));
                }
            }
        }
        restored += drain(
            &mut s,
            &mut input,
            &mut pids,
            &mut offsets,
            &mut rejected,
            &mut errors,
        );
        if let Some(store) = s.recovery_store("/") {
            assert!(store.packet_count() <= recovery.max_packets);
            assert!(store.session_count() <= recovery.max_sessions);
        }
        assert!(errors <= rejected, "a CONNECT_ERROR nobody asked for");
    }
    for session in 0..4 {
        s.closed(&session, DisconnectReason::TransportClose);
    }
    drain(
        &mut s,
        &mut input,
        &mut pids,
        &mut offsets,
        &mut rejected,
        &mut errors,
    );
    s.handle_timeout(now);
    let later = now + KEEP + Duration::from_secs(2);
    s.handle_timeout(later);
    assert!(s.recovery_store("/").is_none(), "kept past the duration");
    assert_eq!(s.poll_timeout(), None);
    restored
}

fn drain(
    s: &mut Server<u8, ()>,
    input: &mut Input<'_>,
    pids: &mut Vec<String>,
    offsets: &mut Vec<String>,
    rejected: &mut usize,
    errors: &mut usize,
) -> usize {
    let mut restored = 0;
    loop {
        let mut moved = false;
        while let Some(event) = s.poll_event() {
            moved = true;
            if let ServerEvent::ConnectRequest {
                session, namespace, ..
            } = event
            {
                let restoring = s.restoring(&session, &namespace);
                if input.byte() & 1 == 0 {
                    if let Ok(id) = s.accept(&session, &namespace) {
                        if s.recovered(&namespace, &id) {
                            assert!(restoring);
                            restored += 1;
                        }
                        // No other live socket has this id.
                        let mut holders: HashMap<u8, ()> = HashMap::new();
                        for k in 0..4u8 {
                            if s.socket_id(&k, &namespace) == Some(&id) {
                                holders.insert(k, ());
                            }
                        }
                        assert_eq!(holders.len(), 1, "a socket id twice");
                        if let Some(pid) = s.pid(&namespace, &id) {
                            if pids.len() < 16 {
                                pids.push(pid.to_owned());
                            }
                        }
                    }
                } else if s.reject(&session, &namespace, "no", None).is_ok() {
                    *rejected += 1;
                }
            }
        }
        while let Some(t) = s.poll_transmit() {
            moved = true;
            if let Transmit::Probe { session } = t {
                // The probed session answers (even byte) or dies unnoticed
                // until now (odd): a ping timeout.
                if input.byte() & 1 == 0 {
                    s.handle_alive(&session);
                } else {
                    s.closed(&session, DisconnectReason::PingTimeout);
                }
                continue;
            }
            if let Transmit::Packet { packet, .. } = t {
                let text = packet.text.as_str();
                if text.starts_with('4') {
                    *errors += 1;
                }
                // Harvest offsets: the last string of an event.
                if text.starts_with('2') && text.ends_with("\"]") && offsets.len() < 16 {
                    if let Some(start) = text[..text.len() - 2].rfind('"') {
                        offsets.push(text[start + 1..text.len() - 2].to_owned());
                    }
                }
            }
        }
        if !moved {
            return restored;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_restore_seeds_restore() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/socketio_recovery");
        for (seed, want) in [
            ("restore_after_transport_close", 1),
            ("reject_then_expire", 1),
        ] {
            let data = std::fs::read(dir.join(seed)).unwrap();
            assert_eq!(super::run(&data), want, "{seed}");
        }
    }
}
