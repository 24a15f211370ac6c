//! `duplex connect --stomp tcp://…|ws://…`: subscriptions printed, sends
//! with receipts, through duplex-tokio's `StompClient`.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use duplex_stomp::{AckMode, ClientConfig, ClientEvent, Frame, HeartBeat, Message};
use duplex_tokio::stomp::{StompClient, StompError};
use serde_json::json;

use super::input::{Input, Linger, UserEvent};
use super::{AckArg, Args, Failure, Out};

/// Runs the STOMP client until input ends and every receipt is in (then
/// DISCONNECT), or the server ends the session.
pub(super) async fn run(args: &Args, out: &Out) -> Result<(), Failure> {
    let mode = match args.ack {
        None | Some(AckArg::Auto) => AckMode::Auto,
        Some(AckArg::Client) => AckMode::Client,
        Some(AckArg::ClientIndividual) => AckMode::ClientIndividual,
        Some(AckArg::Wait) => {
            return Err(Failure::usage(
                "--ack with --stomp needs a mode: auto, client or client-individual",
            ));
        }
    };
    let timeout = args.timeout()?;
    let wait = args.wait()?;
    let headers = args.headers()?;
    let mut config = ClientConfig::new(args.vhost.clone());
    config.login = args.login.clone();
    config.passcode = args.passcode.clone();
    config.heart_beat = heart_beat(&args.heart_beat)?;
    config.connect_timeout = Some(timeout);

    let mut client = connect(args, out, config, timeout).await?;
    let connected = client.connected();
    out.news(
        "connected",
        json!({
            "version": connected.version.as_str(),
            "session": connected.session,
            "server": connected.server,
        }),
        &format!(
            "connected to {} (STOMP {}{})",
            args.url,
            connected.version.as_str(),
            connected
                .server
                .as_deref()
                .map(|s| format!(", server {s}"))
                .unwrap_or_default()
        ),
    );

    // Every SUBSCRIBE and SEND asks for a receipt; the client ends only
    // once all of them are in.
    let mut pending = BTreeSet::new();
    let mut next_receipt = 0u64;
    let mut receipt_id = |kind: &str| {
        next_receipt += 1;
        format!("{kind}-{next_receipt}")
    };
    for destination in &args.subscribe {
        let receipt = receipt_id("subscribe");
        client
            .subscribe_with(destination, mode, &[("receipt", &receipt)])
            .await
            .map_err(Failure::failed)?;
        pending.insert(receipt);
    }
    for (destination, body) in args.sends() {
        let receipt = receipt_id("send");
        send(&client, &destination, &headers, &receipt, body).await?;
        pending.insert(receipt);
    }

    let mut input = Input::new(out);
    let mut linger = Linger::new();
    let mut receipt_deadline = Linger::new();
    let mut received = 0u64;
    let result = loop {
        if pending.is_empty() {
            receipt_deadline.disarm();
            if input.ended() && args.eof_closes() {
                linger.arm(wait);
            }
        } else {
            receipt_deadline.arm(timeout);
        }
        tokio::select! {
            event = client.next_event() => match event {
                Some(ClientEvent::Message(message)) => {
                    print_message(out, &message);
                    if mode != AckMode::Auto {
                        // Printed is what "consumed" means for this tool.
                        client.ack(&message).await.map_err(Failure::failed)?;
                    }
                    received += 1;
                    if args.count_reached(received) {
                        break Ok(());
                    }
                }
                Some(ClientEvent::Receipt { receipt_id }) => {
                    out.data("receipt", json!({"receipt-id": receipt_id}), &format!("receipt {receipt_id}"));
                    pending.remove(&receipt_id);
                }
                Some(ClientEvent::Error(frame)) => break Err(server_error(&frame)),
                Some(ClientEvent::Failed(e)) => break Err(Failure::failed(e)),
                Some(ClientEvent::Disconnected) | None => {
                    break Err(Failure::failed("the connection closed"));
                }
                Some(_) => {}
            },
            event = input.next() => match event {
                UserEvent::Line(line) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let (destination, body) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                    let receipt = receipt_id("send");
                    send(&client, destination, &headers, &receipt, body.to_owned()).await?;
                    pending.insert(receipt);
                }
                UserEvent::Eof => {}
                UserEvent::Interrupt | UserEvent::Ended => break Ok(()),
            },
            () = linger.done() => break Ok(()),
            () = receipt_deadline.done() => {
                let missing: Vec<_> = pending.iter().cloned().collect();
                break Err(Failure::failed(format!("no receipt within {timeout:?} for {}", missing.join(", "))));
            }
        }
    };
    if result.is_ok() {
        match client.disconnect().await {
            // RabbitMQ's Web-STOMP closes the WebSocket on DISCONNECT
            // before its RECEIPT reaches us. Every frame we sent has its
            // receipt by now, so the server hanging up is the end we asked
            // for, not a failure.
            Ok(()) | Err(StompError::Closed) => {}
            Err(e) => return Err(Failure::failed(e)),
        }
        out.news("close", json!({}), "disconnected");
    }
    result
}

/// Opens the session over TCP (`tcp://host:port`) or WebSocket (`ws://`,
/// `wss://`).
async fn connect(
    args: &Args,
    out: &Out,
    config: ClientConfig,
    timeout: Duration,
) -> Result<StompClient, Failure> {
    let url = args.url.as_str();
    let parsed = url::Url::parse(url).map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    let scheme = parsed.scheme();
    let client = match scheme {
        "tcp" | "stomp" => {
            let host = parsed
                .host_str()
                .ok_or_else(|| Failure::usage(format!("{url}: no host")))?;
            let port = parsed.port().unwrap_or(61613);
            StompClient::connect((host.trim_matches(['[', ']']), port), config).await
        }
        "ws" | "wss" => {
            let websocket = duplex_tokio::ClientConfig {
                handshake_timeout: timeout,
                tls: if scheme == "wss" {
                    Some(super::tls::config(args, out)?)
                } else {
                    None
                },
                ..duplex_tokio::ClientConfig::default()
            };
            StompClient::connect_websocket(url, config, websocket).await
        }
        "sockjs+http" | "sockjs+https" => {
            let http_url = url.strip_prefix("sockjs+").unwrap_or(url);
            let tls = super::tls::config_for(http_url, args, out)?;
            let conn =
                super::sockjs::SockJsConn::open(http_url, args.transport, timeout, tls).await?;
            // STOMP frames delimit themselves, so the session can carry
            // them as a byte stream.
            let (client_end, bridge_end) = tokio::io::duplex(64 * 1024);
            tokio::spawn(super::sockjs::bridge(conn, bridge_end));
            StompClient::over_stream(client_end, config).await
        }
        other => {
            return Err(Failure::usage(format!(
                "{url}: --stomp wants tcp://, ws://, wss://, sockjs+http:// or sockjs+https://, not {other}://"
            )));
        }
    };
    client.map_err(|e| Failure::failed(format!("{url}: {e}")))
}

/// SEND with the `--header`s and a receipt request.
async fn send(
    client: &StompClient,
    destination: &str,
    headers: &[(String, String)],
    receipt: &str,
    body: String,
) -> Result<(), Failure> {
    let mut all: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.push(("receipt", receipt));
    client
        .send(destination, &all, body)
        .await
        .map_err(Failure::failed)
}

/// `SEND,RECEIVE` in milliseconds.
fn heart_beat(text: &str) -> Result<HeartBeat, Failure> {
    let bad = || Failure::usage(format!("--heart-beat {text:?}: expected MS,MS"));
    let (send, receive) = text.split_once(',').ok_or_else(bad)?;
    let ms = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| bad())
    };
    Ok(HeartBeat {
        send: ms(send)?,
        receive: ms(receive)?,
    })
}

/// Prints a MESSAGE: its body as a line, or a record with the
/// destination, every header and the body (base64 when not UTF-8).
fn print_message(out: &Out, message: &Message) {
    let body = message.body();
    let (text, encoding) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), "utf-8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(body),
            "base64",
        ),
    };
    let headers: serde_json::Map<String, serde_json::Value> = message
        .frame()
        .headers()
        .iter()
        .map(|h| (h.name().to_owned(), h.value().into()))
        .collect();
    out.data(
        "message",
        json!({
            "destination": message.destination(),
            "headers": headers,
            "body": text,
            "encoding": encoding,
        }),
        &text,
    );
}

/// The server's ERROR frame as one line.
fn server_error(frame: &Frame) -> Failure {
    let message = frame.header("message").unwrap_or("ERROR");
    let body = String::from_utf8_lossy(frame.body());
    let body = body.trim();
    if body.is_empty() {
        Failure::failed(format!("server error: {message}"))
    } else {
        Failure::failed(format!(
            "server error: {message}: {}",
            body.replace('\n', " ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heart_beats_are_two_millisecond_counts() {
        let hb = heart_beat("0, 2500").unwrap();
        assert_eq!(hb.send, Duration::ZERO);
        assert_eq!(hb.receive, Duration::from_millis(2500));
        assert!(heart_beat("10").is_err());
        assert!(heart_beat("a,b").is_err());
    }
}
