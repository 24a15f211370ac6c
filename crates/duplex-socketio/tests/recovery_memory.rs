//! What connection state recovery costs in memory, measured with a
//! counting allocator (live heap bytes): per kept session, per stored
//! packet beyond its wire bytes, and per connected socket. The figures are
//! printed (docs/socketio-recovery.md quotes them) and held under generous
//! ceilings, so that a change that makes them balloon fails here.
//!
//! One test in this binary: the allocator counts every thread.
//!
//! The one `unsafe` of this crate's tests: a global allocator is an
//! `unsafe` trait. It only forwards to the system allocator, which is what
//! makes each block sound, and it is compiled into this test binary alone.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use duplex_socketio::recovery::RecoveryConfig;
use duplex_socketio::server::{DisconnectReason, Server, ServerConfig};
use duplex_socketio::{Broadcast, Packet, ProtocolVersion, Value};
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are this allocator's; the counter
// is an atomic and allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const SOCKETS: u32 = 2_000;
const PACKETS: i64 = 5_000;

/// A server with `SOCKETS` sockets (and one more that stays, so that the
/// namespace and its tables' capacity stay too), each in two rooms with a
/// small `data`.
fn populated(recovery: bool, now: Instant) -> Server<u32, ()> {
    let mut config = ServerConfig::default().with_rng(StdRng::seed_from_u64(1));
    if recovery {
        config = config.with_recovery(RecoveryConfig::default());
    }
    let mut s = Server::new(config);
    for k in 0..=SOCKETS {
        s.open(k, ProtocolVersion::V5, now);
        s.handle_text(&k, Bytes::from_static(b"0"));
        while s.poll_event().is_some() {}
        let id = s.accept(&k, "/").unwrap();
        s.join(
            "/",
            &id,
            [format!("room-{}", k % 50), "everyone".to_owned()],
        );
        s.set_data(
            "/",
            &id,
            Value::Object(vec![("user".into(), format!("user-{k}").into())]),
        );
    }
    while s.poll_transmit().is_some() {}
    s.handle_timeout(now);
    s
}

fn close_all(s: &mut Server<u32, ()>, reason: DisconnectReason, now: Instant) {
    for k in 0..SOCKETS {
        s.closed(&k, reason);
    }
    while s.poll_event().is_some() {}
    s.handle_timeout(now);
}

#[test]
#[allow(clippy::print_stderr)]
fn memory_per_session_packet_and_socket() {
    let now = Instant::now();

    // Per connected socket: recovery's pid and room history.
    let before = live();
    let off = populated(false, now);
    let socket_off = live() - before;
    drop(off);
    let before = live();
    let mut on = populated(true, now);
    let socket_on = live() - before;
    let per_socket = (socket_on - socket_off) / SOCKETS as isize;

    // Per kept session: the same sockets lost, against the same sockets
    // gone for good.
    let base = live();
    close_all(&mut on, DisconnectReason::TransportClose, now);
    let kept = live() - base;
    let mut gone = populated(true, now);
    let base = live();
    close_all(&mut gone, DisconnectReason::ClientNamespaceDisconnect, now);
    let dropped = live() - base;
    let per_session = (kept - dropped) / SOCKETS as isize;
    assert_eq!(
        on.recovery_store("/").unwrap().session_count(),
        SOCKETS as usize
    );
    drop(gone);

    // Per stored packet, beyond its wire bytes (a ~40-byte event).
    let packet = Packet::event_with("/", "tick", &["s1".into(), 123_456.into()], None).unwrap();
    let wire = packet.encode().text.len() + 12; // and its offset
    let base = live();
    for n in 0..PACKETS {
        let p = Packet::event_with("/", "tick", &["s1".into(), n.into()], None).unwrap();
        on.broadcast("/", &Broadcast::to("everyone"), &p);
    }
    on.handle_timeout(now);
    let per_packet = (live() - base) / PACKETS as isize - wire as isize;
    assert_eq!(
        on.recovery_store("/").unwrap().packet_count(),
        PACKETS as usize
    );

    eprintln!(
        "recovery memory: {per_socket} B per connected socket, {per_session} B per kept \
         session (2 rooms + own, small data), {per_packet} B per stored packet beyond \
         its ~{wire} wire bytes"
    );
    assert!(per_socket < 512, "{per_socket} B per socket");
    assert!(per_session < 1024, "{per_session} B per session");
    assert!(per_packet < 512, "{per_packet} B per packet");
}
