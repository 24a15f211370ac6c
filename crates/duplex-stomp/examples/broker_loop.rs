//! A STOMP broker on plain `std::net`: one thread, non-blocking sockets, one
//! loop. Server sessions speak the protocol, the sans-IO broker routes; this
//! file only moves bytes and tells the time.
//!
//! ```sh
//! cargo run -p duplex-stomp --example broker_loop -- 127.0.0.1:61613
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use duplex_stomp::{Broker, ConnectionId, ServerConfig, ServerEvent, ServerSession};

struct Connection {
    stream: TcpStream,
    session: ServerSession,
    unwritten: BytesMut,
    peer_gone: bool,
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:61613".into());
    let listener = TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    println!("duplex-stomp broker listening on {addr}");

    let mut broker = Broker::default();
    let mut connections: HashMap<ConnectionId, Connection> = HashMap::new();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; 64 * 1024];

    loop {
        let mut busy = false;
        while let Ok((stream, _)) = listener.accept() {
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            next_id += 1;
            let session = ServerSession::new(ServerConfig::default(), Instant::now());
            connections.insert(
                ConnectionId(next_id),
                Connection {
                    stream,
                    session,
                    unwritten: BytesMut::new(),
                    peer_gone: false,
                },
            );
        }

        // Bytes in, time in, events out.
        let now = Instant::now();
        let ids: Vec<ConnectionId> = connections.keys().copied().collect();
        for id in &ids {
            let Some(conn) = connections.get_mut(id) else {
                continue;
            };
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => {
                        conn.peer_gone = true;
                        break;
                    }
                    Ok(n) => {
                        busy = true;
                        conn.session.receive(&buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        conn.peer_gone = true;
                        break;
                    }
                }
            }
            if conn.session.poll_timeout().is_some_and(|t| t <= now) {
                conn.session.handle_timeout(now);
            }
            let events: Vec<ServerEvent> =
                std::iter::from_fn(|| conn.session.poll_event()).collect();
            for event in events {
                match event {
                    ServerEvent::Connected(accepted) => broker.connect(*id, accepted.version),
                    ServerEvent::Frame(frame) => broker.handle_frame(*id, frame),
                    ServerEvent::Failed(_) => broker.disconnect(*id),
                }
                // The broker's frames go to whichever sessions they are for.
                while let Some(out) = broker.poll_transmit() {
                    if let Some(target) = connections.get_mut(&out.connection) {
                        // A message a 1.0 peer cannot receive (a line feed in
                        // a header) stays unacknowledged until it leaves.
                        let _ = target.session.send_frame(&out.frame);
                    }
                }
            }
        }

        // Bytes out; closed sessions are dropped once flushed.
        for id in &ids {
            let Some(conn) = connections.get_mut(id) else {
                continue;
            };
            conn.session.poll_transmit(&mut conn.unwritten);
            while !conn.unwritten.is_empty() {
                match conn.stream.write(&conn.unwritten) {
                    Ok(0) => {
                        conn.peer_gone = true;
                        break;
                    }
                    Ok(n) => {
                        busy = true;
                        conn.unwritten.advance(n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        conn.peer_gone = true;
                        break;
                    }
                }
            }
            let finished = conn.session.is_closed() && conn.unwritten.is_empty();
            if conn.peer_gone || finished {
                broker.disconnect(*id);
                connections.remove(id);
                while let Some(out) = broker.poll_transmit() {
                    if let Some(target) = connections.get_mut(&out.connection) {
                        let _ = target.session.send_frame(&out.frame);
                    }
                }
            }
        }

        if !busy {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
