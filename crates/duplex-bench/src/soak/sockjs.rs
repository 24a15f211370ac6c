//! STOMP over SockJS for the soak: a minimal SockJS client on three of
//! its transports (`websocket`, `xhr` polling, `xhr_streaming`) at the
//! demo's `/sockjs/stomp`, bridged to a byte pipe that
//! [`StompClient::over_stream`](duplex_tokio::stomp::StompClient::over_stream)
//! runs on.
//!
//! What the STOMP client writes goes out as SockJS messages (the server
//! parses them as one byte stream, frames split or joined as they come);
//! every SockJS message received is written into the pipe. The pipe closing
//! (the client dropped, killed or done) ends the bridge at once, without a
//! SockJS close: a killed client is one that simply stops polling, and the
//! server must expire its session (5 s) and hand its unacked messages on.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::web::{Http, open_owned};

/// The SockJS transport a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    WebSocket,
    Xhr,
    XhrStreaming,
}

/// Bytes of the pipe between the STOMP client and the bridge.
const PIPE: usize = 64 * 1024;

/// Opens a SockJS session `session` at `{base}/sockjs/stomp` over
/// `transport`; returns the STOMP client's end of the pipe.
pub(super) async fn open(
    base: &str,
    transport: Transport,
    session: &str,
) -> Result<DuplexStream, String> {
    let base = base.trim_end_matches('/');
    let url = format!("{base}/sockjs/stomp/000/{session}");
    let (ours, theirs) = tokio::io::duplex(PIPE);
    match transport {
        Transport::WebSocket => {
            let ws_url = format!(
                "ws://{}/websocket",
                url.trim_start_matches("http://").trim_end_matches('/')
            );
            let (mut ws, _) = duplex_tokio::connect(&ws_url)
                .await
                .map_err(|e| format!("sockjs websocket: {e}"))?;
            let open = tokio::time::timeout(super::STEP, ws.next())
                .await
                .map_err(|_| "sockjs websocket: no open frame".to_owned())?;
            match open {
                Some(Ok(duplex_tokio::ws::Message::Text(t))) if t.as_str() == "o" => {}
                other => return Err(format!("sockjs websocket: opened with {other:?}")),
            }
            tokio::spawn(bridge_websocket(ws, theirs));
        }
        Transport::Xhr | Transport::XhrStreaming => {
            let http = Http::new();
            // The first poll opens the session: `o`.
            let (status, body) = http.post(&format!("{url}/xhr"), "text/plain", "").await?;
            if status != http::StatusCode::OK || body.as_ref() != b"o\n" {
                return Err(format!("sockjs xhr: opened with {status} {body:?}"));
            }
            tokio::spawn(bridge_http(http, url, transport, theirs));
        }
    }
    Ok(ours)
}

/// What one SockJS frame says.
enum Frame {
    /// Messages (`a[...]`), to be written into the pipe.
    Messages(Vec<String>),
    /// The server closed the session (`c[...]`).
    Close,
    /// `o`, `h`, the xhr_streaming prelude: nothing to pass on.
    Nothing,
}

fn parse(frame: &str) -> Result<Frame, String> {
    match frame.as_bytes().first() {
        Some(b'a') => serde_json::from_str(&frame[1..])
            .map(Frame::Messages)
            .map_err(|e| format!("sockjs: a bad message frame {frame:?}: {e}")),
        Some(b'c') => Ok(Frame::Close),
        _ => Ok(Frame::Nothing),
    }
}

/// Writes the frame's messages into the pipe. `None` while the session
/// goes on; `Some(true)` once the server closed it (or said something
/// that is not SockJS), `Some(false)` once the client is gone.
async fn deliver(frame: &str, pipe: &mut WriteHalf<DuplexStream>) -> Option<bool> {
    match parse(frame) {
        Ok(Frame::Messages(messages)) => {
            for message in messages {
                if pipe.write_all(message.as_bytes()).await.is_err() {
                    return Some(false);
                }
            }
            None
        }
        Ok(Frame::Nothing) => None,
        Ok(Frame::Close) | Err(_) => Some(true),
    }
}

/// The next bytes the STOMP client wrote, as one SockJS send body
/// (`["..."]`); `None` once the client is gone.
async fn outgoing(pipe: &mut ReadHalf<DuplexStream>, buf: &mut [u8]) -> Option<String> {
    match pipe.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
            serde_json::to_string(&[text]).ok()
        }
    }
}

async fn bridge_websocket(
    mut ws: duplex_tokio::WebSocketStream<duplex_tokio::ClientIo>,
    pipe: DuplexStream,
) {
    use duplex_tokio::ws::Message;
    let (mut from_client, mut to_client) = tokio::io::split(pipe);
    let mut buf = vec![0u8; PIPE];
    // Set once the client is gone: what it wrote before (its last acks) is
    // still sent, as a socket would have flushed it.
    let mut receiving = true;
    loop {
        tokio::select! {
            incoming = ws.next(), if receiving => match incoming {
                Some(Ok(Message::Text(frame))) => match deliver(frame.as_str(), &mut to_client).await {
                    None => {}
                    Some(true) => break,
                    Some(false) => receiving = false,
                },
                Some(Ok(_)) => {}
                _ => break,
            },
            out = outgoing(&mut from_client, &mut buf) => match out {
                Some(body) => {
                    if ws.send(Message::from(body)).await.is_err() {
                        break;
                    }
                }
                // Done or killed: the socket goes without a close.
                None => break,
            },
        }
    }
}

async fn bridge_http(http: Http, url: String, transport: Transport, pipe: DuplexStream) {
    let (mut from_client, mut to_client) = tokio::io::split(pipe);
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // Ends when the server closes the session (or fails); a client gone
    // ends it too, but only after what it wrote has been sent (below).
    let receive = async {
        loop {
            if transport == Transport::XhrStreaming {
                let Ok((status, mut lines)) = open_owned(
                    host,
                    http::Method::POST,
                    &format!("{path}/xhr_streaming"),
                    &[],
                )
                .await
                else {
                    return true;
                };
                if status != http::StatusCode::OK {
                    return true;
                }
                // Until the server ends the response (its streaming limit).
                while let Ok(Some(frame)) = lines.next().await {
                    if let Some(server_closed) = deliver(&frame, &mut to_client).await {
                        return server_closed;
                    }
                }
            } else {
                let Ok((status, body)) = http.post(&format!("{url}/xhr"), "text/plain", "").await
                else {
                    return true;
                };
                if status != http::StatusCode::OK {
                    return true;
                }
                for frame in String::from_utf8_lossy(&body).lines() {
                    if let Some(server_closed) = deliver(frame, &mut to_client).await {
                        return server_closed;
                    }
                }
            }
        }
    };
    let send = async {
        let mut buf = vec![0u8; PIPE];
        while let Some(body) = outgoing(&mut from_client, &mut buf).await {
            match http
                .post(&format!("{url}/xhr_send"), "text/plain", body)
                .await
            {
                Ok((status, _)) if status == http::StatusCode::NO_CONTENT => {}
                _ => return,
            }
        }
    };
    // The client gone (its pipe drained and closed: the polls stop, and the
    // server expires the session), or the server's close, ends the bridge;
    // a receive that stops because the client is gone lets the sends finish
    // (its last acks reach the server, as a socket would have flushed them).
    tokio::pin!(send);
    tokio::select! {
        () = &mut send => {}
        server_closed = receive => {
            if !server_closed {
                let _ = tokio::time::timeout(super::STEP, send).await;
            }
        }
    }
}
