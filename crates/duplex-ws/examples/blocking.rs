//! duplex-ws from a plain blocking `std::net` loop: no async runtime at all.
//!
//! A server thread accepts one connection and echoes it; the main thread is
//! the client. Both drive the same sans-IO machines the tokio adapter uses:
//! read bytes -> `receive` -> `poll_event`, commands -> `poll_transmit` ->
//! write, the time -> `handle_timeout`.
//!
//! Run it with `cargo run -p duplex-ws --example blocking`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use duplex_ws::handshake::{ClientHandshake, ClientRequest, ServerHandshake};
use duplex_ws::{CloseCode, Config, Connection, Event, Message, Role};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Writes whatever the connection wants written.
fn flush(conn: &mut Connection, tcp: &mut TcpStream) -> Result<()> {
    let mut out = BytesMut::new();
    if conn.poll_transmit(&mut out) > 0 {
        tcp.write_all(&out)?;
    }
    Ok(())
}

/// Reads once into the connection; false at end of file.
fn read_some(conn: &mut Connection, tcp: &mut TcpStream) -> Result<bool> {
    let mut buf = [0u8; 8192];
    let n = tcp.read(&mut buf)?;
    if n == 0 {
        conn.receive_eof();
    } else {
        conn.receive(&buf[..n]);
    }
    Ok(n != 0)
}

fn serve_one(listener: TcpListener) -> Result<()> {
    let (mut tcp, _) = listener.accept()?;
    let mut handshake = ServerHandshake::new();
    let mut buf = [0u8; 4096];
    let request = loop {
        let n = tcp.read(&mut buf)?;
        if n == 0 {
            return Err("client left during the handshake".into());
        }
        match handshake.receive(&buf[..n]) {
            Ok(Some(request)) => break request,
            Ok(None) => continue,
            Err(e) => {
                tcp.write_all(&e.response())?;
                return Err(e.into());
            }
        }
    };
    tcp.write_all(&request.accept(None, None, &[])?)?;
    let mut conn = Connection::new(Role::Server, Config::default());
    conn.receive(&handshake.into_remaining());
    loop {
        while let Some(event) = conn.poll_event() {
            if let Event::Message(msg) = event {
                conn.send(msg)?;
            }
        }
        flush(&mut conn, &mut tcp)?;
        // A server closes TCP first once the close handshake is over.
        if conn.should_close_transport() || !read_some(&mut conn, &mut tcp)? {
            return Ok(());
        }
    }
}

fn main() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || serve_one(listener).map_err(|e| e.to_string()));

    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut config = Config::default();
    let request = ClientRequest {
        host: addr.to_string(),
        target: "/echo".into(),
        ..ClientRequest::default()
    };
    let (mut handshake, bytes) = ClientHandshake::new(&request, config.rng.as_mut());
    tcp.write_all(&bytes)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf)?;
        if n == 0 || handshake.receive(&buf[..n])?.is_some() {
            break;
        }
    }
    let mut client = Connection::new(Role::Client, config);
    client.receive(&handshake.into_remaining());

    client.send_text("hello from a blocking loop")?;
    client.send_binary(&[1, 2, 3])?;
    flush(&mut client, &mut tcp)?;
    let mut echoed = Vec::new();
    while echoed.len() < 2 && read_some(&mut client, &mut tcp)? {
        while let Some(event) = client.poll_event() {
            if let Event::Message(msg) = event {
                echoed.push(msg);
            }
        }
    }
    println!("echoed: {echoed:?}");
    assert_eq!(echoed[0], Message::from("hello from a blocking loop"));

    client.close(CloseCode::NORMAL, "done")?;
    flush(&mut client, &mut tcp)?;
    // The client waits for the server's close frame and its TCP close, for
    // at most the close timeout (time is handed in, never read inside).
    client.handle_timeout(Instant::now());
    while !client.should_close_transport() {
        let open = read_some(&mut client, &mut tcp)?;
        while client.poll_event().is_some() {}
        client.handle_timeout(Instant::now());
        if !open {
            break;
        }
    }
    println!("closed cleanly: {}", client.is_clean_close());
    server.join().map_err(|_| "server thread panicked")??;
    Ok(())
}
