//! `duplex connect ws://…`: stdin lines out as messages, messages in on
//! stdout, through duplex-tokio's `connect_with`.

use std::pin::Pin;
use std::time::Duration;

use duplex_tokio::ws::handshake::Response;
use duplex_tokio::ws::{CloseCode, DeflateConfig, Message};
use duplex_tokio::{ClientConfig, WebSocketStream, connect_with};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};

use super::input::{Input, Linger, UserEvent};
use super::output::{decode, encode};
use super::{Args, Encoding, Failure, Out};

/// Runs the WebSocket client until the close handshake ends.
pub(super) async fn run(args: &Args, out: &Out) -> Result<(), Failure> {
    let close_code = CloseCode(args.close_code);
    if !close_code.is_sendable() {
        return Err(Failure::usage(format!(
            "--close-code {}: not a code an endpoint may send",
            args.close_code
        )));
    }
    if args.close_reason.len() > 123 {
        return Err(Failure::usage("--close-reason: longer than 123 bytes"));
    }
    let timeout = args.timeout()?;
    let ping_every = args
        .ping_interval
        .map(|secs| super::seconds("--ping-interval", secs))
        .transpose()?
        .filter(|d| !d.is_zero());
    let config = ClientConfig {
        protocols: args.subprotocol.clone(),
        headers: args.headers()?,
        handshake_timeout: timeout,
        deflate: args.deflate.then(DeflateConfig::default),
        ..ClientConfig::default()
    };
    let config = ClientConfig {
        tls: if args.url.starts_with("wss:") {
            Some(super::tls::config(args, out)?)
        } else {
            None
        },
        ..config
    };
    let (ws, response) = connect_with(&args.url, config)
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", args.url)))?;
    session(ws, &response, args, out, close_code, timeout, ping_every).await
}

/// Moves lines and messages until the close handshake ends.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    response: &Response,
    args: &Args,
    out: &Out,
    close_code: CloseCode,
    timeout: Duration,
    ping_every: Option<Duration>,
) -> Result<(), Failure> {
    out.news(
        "open",
        json!({
            "url": args.url,
            "protocol": response.protocol,
            "extensions": response.extensions,
        }),
        &match &response.protocol {
            Some(p) => format!("connected to {} (subprotocol {p})", args.url),
            None => format!("connected to {}", args.url),
        },
    );

    let mut input = Input::new(out);
    let mut ping = ping_every.map(|every| {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });
    let mut received = 0u64;
    let wait = args.wait()?;
    // Armed when stdin ends with --wait: receiving goes on until it fires.
    let mut linger = Linger::new();
    // Armed once our close frame is out: the peer gets --timeout to answer.
    let mut close_deadline: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let result = loop {
        let closing = close_deadline.is_some();
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(message)) => {
                    print_message(out, &message, args.binary);
                    received += 1;
                    if args.count_reached(received) && !closing {
                        start_close(&mut ws, close_code, &args.close_reason, &mut close_deadline, timeout).await?;
                    }
                }
                Some(Err(e)) => break Err(Failure::failed(e)),
                None => break Ok(()),
            },
            event = input.next(), if !closing => match event {
                UserEvent::Line(line) => {
                    match outgoing(&line, args.binary, out.jsonl()) {
                        Ok(message) => {
                            if let Err(e) = ws.send(message).await {
                                break Err(Failure::failed(e));
                            }
                        }
                        Err(Failure::Usage(msg) | Failure::Failed(msg)) => out.warn(&format!("line not sent: {msg}")),
                    }
                }
                UserEvent::Eof if !args.eof_closes() => {}
                UserEvent::Eof if !wait.is_zero() => linger.arm(wait),
                UserEvent::Eof | UserEvent::Interrupt | UserEvent::Ended => {
                    start_close(&mut ws, close_code, &args.close_reason, &mut close_deadline, timeout).await?;
                }
            },
            () = linger.done(), if !closing => {
                start_close(&mut ws, close_code, &args.close_reason, &mut close_deadline, timeout).await?;
            }
            () = tick(&mut ping), if !closing => {
                if let Err(e) = ws.ping(b"").await {
                    break Err(Failure::failed(e));
                }
            }
            () = expire(&mut close_deadline) => {
                break Err(Failure::failed("the server did not answer the close frame in time"));
            }
        }
    };
    let we_closed = close_deadline.is_some();
    let peer = ws.peer_close().cloned();
    let (code, reason) = match &peer {
        Some(Some(frame)) => (Some(frame.code.0), frame.reason.as_str().to_owned()),
        _ => (None, String::new()),
    };
    out.news(
        "close",
        json!({"code": code, "reason": reason}),
        &match code {
            Some(code) if reason.is_empty() => format!("closed ({code})"),
            Some(code) => format!("closed ({code} {reason})"),
            None => "closed".to_owned(),
        },
    );
    result?;
    match code {
        // A normal close, going away, or none at all after ours.
        None | Some(1000 | 1001) => Ok(()),
        // Our own code sent back: the answer RFC 6455 (5.5.1) asks for
        // and real servers (Node `ws`, duplex serve) give, not an error.
        Some(code) if we_closed && code == close_code.0 => Ok(()),
        Some(other) => Err(Failure::failed(format!(
            "the server closed with {other} {reason}"
        ))),
    }
}

/// Sends our close frame; what the peer still sends keeps arriving until
/// its close frame.
async fn start_close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: CloseCode,
    reason: &str,
    deadline: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
) -> Result<(), Failure> {
    if deadline.is_some() {
        return Ok(());
    }
    *deadline = Some(Box::pin(tokio::time::sleep(timeout)));
    if ws.connection().state() != duplex_tokio::ws::State::Open {
        return Ok(());
    }
    ws.connection()
        .close(code, reason)
        .map_err(Failure::failed)?;
    ws.flush().await.map_err(Failure::failed)
}

/// The message a stdin line stands for.
fn outgoing(line: &str, binary: Option<Encoding>, jsonl: bool) -> Result<Message, Failure> {
    if jsonl {
        // `{"type":"text"|"binary","data":…}`; anything else goes as text.
        if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) {
            let data = object.get("data").and_then(Value::as_str);
            match (object.get("type").and_then(Value::as_str), data) {
                (Some("text"), Some(data)) => return Ok(Message::from(data.to_owned())),
                (Some("binary"), Some(data)) => {
                    return Ok(Message::from(decode(
                        data,
                        binary.unwrap_or(Encoding::Base64),
                    )?));
                }
                _ => {}
            }
        }
    }
    match binary {
        Some(encoding) => Ok(Message::from(decode(line, encoding)?)),
        None => Ok(Message::from(line.to_owned())),
    }
}

/// Prints a received message: text as it is (encoded with `--binary`),
/// binary encoded (base64 unless `--binary` says otherwise).
fn print_message(out: &Out, message: &Message, binary: Option<Encoding>) {
    match message {
        Message::Text(text) => {
            let shown = match binary {
                Some(encoding) => encode(text.as_bytes(), encoding),
                None => text.as_str().to_owned(),
            };
            out.data("text", json!({"data": text.as_str()}), &shown);
        }
        Message::Binary(bytes) => {
            let encoding = binary.unwrap_or(Encoding::Base64);
            let shown = encode(bytes, encoding);
            let name = match encoding {
                Encoding::Base64 => "base64",
                Encoding::Hex => "hex",
            };
            out.data("binary", json!({"data": shown, "encoding": name}), &shown);
        }
    }
}

/// The next tick of the ping timer; pends forever without one.
async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Completes when the deadline passes; pends forever without one.
async fn expire(deadline: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
