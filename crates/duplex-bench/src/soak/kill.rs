//! Clients killed in the middle of a message: the connection goes with a
//! frame, a STOMP frame or a request body half written. The server must
//! drop what it had of it (never deliver half a STOMP frame, never wait
//! for the rest for ever) and count the connection gone.
//!
//! Each session takes the next of three in turn:
//!
//! - a WebSocket on `/echo` that sends the head of a 1,000-byte frame and
//!   10 bytes of it;
//! - STOMP over TCP (when the soak has the listener): a `SEND` announcing
//!   1,000 bytes of body, 7 written; then a well-behaved client sends one
//!   message to the same queue and must receive that message, and only it;
//! - an Engine.IO polling `POST` announcing 1,000 bytes of body, 10
//!   written.

use std::time::Duration;

use duplex_stomp::AckMode;
use duplex_stomp::ClientEvent as StompEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{STEP, SoakConfig};

/// One killed-mid-message session; returns the messages that must have
/// arrived and did (the STOMP check's one).
pub(super) async fn session(config: &SoakConfig, w: usize, n: u64) -> Result<u64, String> {
    let host = config
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    match (n % 3, &config.stomp_addr) {
        (0, _) => websocket(host).await,
        (1, Some(stomp)) => stomp_send(config, stomp, &format!("/queue/soak.mid-{w}-{n}")).await,
        _ => engineio_post(host).await,
    }
}

async fn connect(addr: &str) -> Result<TcpStream, String> {
    tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect {addr}: timed out"))?
        .map_err(|e| format!("connect {addr}: {e}"))
}

/// Reads until `needle` has arrived; returns what was read.
async fn read_until(tcp: &mut TcpStream, needle: &[u8]) -> Result<Vec<u8>, String> {
    let mut seen = Vec::new();
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
            .await
            .map_err(|_| format!("no {needle:?} within {STEP:?}"))?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&seen)
            ));
        }
        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    Ok(seen)
}

async fn websocket(host: &str) -> Result<u64, String> {
    let mut tcp = connect(host).await?;
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let head = read_until(&mut tcp, b"\r\n\r\n").await?;
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "upgrade answered {:?}",
            String::from_utf8_lossy(&head)
        ));
    }
    // FIN, text; masked, 16-bit length 1000; the mask; 10 of the 1000 bytes.
    let mut frame = vec![0x81, 0x80 | 126, 0x03, 0xE8, 1, 2, 3, 4];
    frame.extend_from_slice(&[b'x' ^ 1; 10]);
    tcp.write_all(&frame)
        .await
        .map_err(|e| format!("half a frame: {e}"))?;
    // Killed: no more of the frame, no close.
    Ok(0)
}

async fn stomp_send(config: &SoakConfig, addr: &str, queue: &str) -> Result<u64, String> {
    let mut tcp = connect(addr).await?;
    tcp.write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .await
        .map_err(|e| format!("CONNECT: {e}"))?;
    read_until(&mut tcp, b"\0").await?;
    let half = format!("SEND\ndestination:{queue}\ncontent-length:1000\n\npartial");
    tcp.write_all(half.as_bytes())
        .await
        .map_err(|e| format!("half a SEND: {e}"))?;
    drop(tcp);
    // The queue must hold only what a whole frame sent.
    let client = super::stomp_connect(config, super::Kind::StompTcp).await?;
    client
        .send(queue, &[], "whole")
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut client = client;
    client
        .subscribe(queue, AckMode::ClientIndividual)
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let first = loop {
        match tokio::time::timeout(STEP, client.next_event()).await {
            Ok(Some(StompEvent::Message(m))) => break m,
            Ok(Some(StompEvent::Receipt { .. })) => continue,
            Ok(other) => return Err(format!("waiting for the message: {other:?}")),
            Err(_) => return Err("no message within the step".to_owned()),
        }
    };
    if first.body().as_ref() != b"whole" {
        return Err(format!(
            "received {:?}, not the whole message",
            first.body()
        ));
    }
    client.ack(&first).await.map_err(|e| format!("ack: {e}"))?;
    // Anything else on the queue would be the half frame delivered.
    if let Ok(Some(StompEvent::Message(m))) =
        tokio::time::timeout(Duration::from_millis(100), client.next_event()).await
    {
        return Err(format!("a second message: {:?}", m.body()));
    }
    client
        .disconnect()
        .await
        .map_err(|e| format!("disconnect: {e}"))?;
    Ok(1)
}

async fn engineio_post(host: &str) -> Result<u64, String> {
    let mut tcp = connect(host).await?;
    let open = format!(
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(open.as_bytes())
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // `Connection: close`: the whole answer, then the end.
    let mut answer = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut answer))
        .await
        .map_err(|_| format!("handshake: no answer within {STEP:?}"))?
        .map_err(|e| format!("handshake: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let sid: String = text
        .split_once("\"sid\":\"")
        .map(|(_, rest)| rest.chars().take_while(|c| *c != '"').collect())
        .ok_or_else(|| format!("handshake: no sid in {text:?}"))?;
    let mut tcp = connect(host).await?;
    let post = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n4xxxxxxxxx"
    );
    tcp.write_all(post.as_bytes())
        .await
        .map_err(|e| format!("half a body: {e}"))?;
    // Killed: the rest of the body never comes.
    Ok(0)
}
