//! `duplex connect --sockjs http://…/prefix`: stdin lines out as messages,
//! messages in on stdout, over the transport `/info` allows or the one
//! forced with `--transport`. Frames, paths and batching are
//! duplex-polling's [`SockJsClient`]; this module opens the requests.

use std::time::Duration;

use bytes::Bytes;
use duplex_polling::{SockJsClient, SockJsClientEvent, SockJsClientTransport};
use duplex_tokio::ws::Message;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::mpsc;

use super::input::{Input, Linger, UserEvent};
use super::{Args, Failure, Out, Transport};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What the receiving side reports to the loop.
enum Received {
    /// Bytes of a response (xhr, xhr_streaming) or one WebSocket frame.
    Bytes(Bytes),
    /// A receiving response ended; the next one is being opened.
    Ended,
    /// The transport failed.
    Failed(String),
}

/// Runs the SockJS client until input ends (and `--wait` passes), the
/// server closes the session, or `--count` messages arrived.
pub(super) async fn run(args: &Args, out: &Out) -> Result<(), Failure> {
    let base: http::Uri = args
        .url
        .trim_end_matches('/')
        .parse()
        .map_err(|e| Failure::usage(format!("{}: {e}", args.url)))?;
    if base.scheme_str() != Some("http") {
        return Err(Failure::usage(format!(
            "{}: --sockjs wants an http:// URL (no TLS for SockJS yet)",
            args.url
        )));
    }
    let authority = base
        .authority()
        .ok_or_else(|| Failure::usage(format!("{}: no host", args.url)))?
        .to_string();
    let prefix = base.path().trim_end_matches('/').to_owned();
    let timeout = args.timeout()?;
    let wait = args.wait()?;
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let transport = match args.transport {
        Transport::Websocket => SockJsClientTransport::WebSocket,
        Transport::Polling => SockJsClientTransport::XhrPolling,
        Transport::Streaming => SockJsClientTransport::XhrStreaming,
        Transport::Upgrade => {
            let info = request(
                &http,
                "GET",
                &format!("http://{authority}{prefix}/info"),
                None,
                timeout,
            )
            .await?;
            let info: serde_json::Value = serde_json::from_slice(&info)
                .map_err(|e| Failure::failed(format!("{prefix}/info: {e}")))?;
            if info["websocket"] == true {
                SockJsClientTransport::WebSocket
            } else {
                SockJsClientTransport::XhrStreaming
            }
        }
    };
    let mut client = SockJsClient::new(&prefix, transport, &mut rand::rng());
    let (tx, mut rx) = mpsc::channel::<Received>(64);
    // WebSocket sends go through this channel to the task owning the socket.
    let (ws_out, ws_out_rx) = mpsc::channel::<String>(64);
    let receiver = match transport {
        SockJsClientTransport::WebSocket => {
            let url = format!("ws://{authority}{}", client.receive_path());
            let config = duplex_tokio::ClientConfig {
                handshake_timeout: timeout,
                ..duplex_tokio::ClientConfig::default()
            };
            let (ws, _) = duplex_tokio::connect_with(&url, config)
                .await
                .map_err(|e| Failure::failed(format!("{url}: {e}")))?;
            tokio::spawn(websocket_task(ws, tx, ws_out_rx))
        }
        _ => {
            let url = format!("http://{authority}{}", client.receive_path());
            // A poll is answered only when there is something to say: at
            // the latest the server's heartbeat, 25 s by default.
            tokio::spawn(xhr_task(
                http.clone(),
                url,
                tx,
                timeout.max(Duration::from_secs(35)),
            ))
        }
    };
    let send_url = format!("http://{authority}{}", client.send_path());

    let mut input = Input::new();
    let mut linger = Linger::new();
    let mut open_deadline = Linger::new();
    open_deadline.arm(timeout);
    let mut received = 0u64;
    let result = loop {
        if input.ended() && args.eof_closes() {
            linger.arm(wait);
        }
        tokio::select! {
            report = rx.recv() => {
                match report {
                    Some(Received::Bytes(bytes)) => {
                        let fed = if transport == SockJsClientTransport::WebSocket {
                            match std::str::from_utf8(&bytes) {
                                Ok(frame) => client.receive_frame(frame),
                                Err(_) => Err(duplex_polling::Error::BrokenJson),
                            }
                        } else {
                            client.receive_stream(&bytes)
                        };
                        if let Err(e) = fed {
                            break Err(Failure::failed(format!("not SockJS: {e}")));
                        }
                    }
                    Some(Received::Ended) => client.stream_ended(),
                    Some(Received::Failed(e)) => break Err(Failure::failed(e)),
                    None => break Err(Failure::failed("the connection closed")),
                }
                let mut done = None;
                while let Some(event) = client.poll_event() {
                    match event {
                        SockJsClientEvent::Open => {
                            open_deadline.disarm();
                            out.news(
                                "open",
                                json!({"url": args.url, "transport": transport.path_segment()}),
                                &format!("connected to {} ({})", args.url, transport.path_segment()),
                            );
                        }
                        SockJsClientEvent::Message(text) => {
                            out.data("message", json!({"data": text}), &text);
                            received += 1;
                            if args.count_reached(received) {
                                done = Some(Ok(()));
                                break;
                            }
                        }
                        SockJsClientEvent::Heartbeat => {}
                        SockJsClientEvent::Closed { code, reason } => {
                            out.news(
                                "close",
                                json!({"code": code, "reason": reason}),
                                &format!("closed by the server ({code} {reason})"),
                            );
                            done = Some(Ok(()));
                            break;
                        }
                    }
                }
                if let Some(result) = done {
                    break result;
                }
            }
            event = input.next() => match event {
                UserEvent::Line(line) => {
                    if let Err(e) = client.send(&line) {
                        out.warn(&format!("line not sent: {e}"));
                    }
                }
                UserEvent::Eof => {}
                UserEvent::Interrupt => break Ok(()),
            },
            () = linger.done() => break Ok(()),
            () = open_deadline.done() => {
                break Err(Failure::failed(format!("{}: no open frame within {timeout:?}", args.url)));
            }
        }
        // What was typed goes out once the session is open, batched.
        if let Some(batch) = client.poll_send() {
            let sent = if transport == SockJsClientTransport::WebSocket {
                ws_out
                    .send(batch)
                    .await
                    .map_err(|_| Failure::failed("the WebSocket closed"))
            } else {
                request(&http, "POST", &send_url, Some(batch), timeout)
                    .await
                    .map(|_| ())
            };
            if let Err(e) = sent {
                break Err(e);
            }
        }
    };
    // Dropping the WebSocket's sender makes its task close it with 1000.
    drop(ws_out);
    if transport == SockJsClientTransport::WebSocket {
        let _ = tokio::time::timeout(timeout, receiver).await;
    } else {
        receiver.abort();
    }
    result
}

/// Owns the WebSocket: frames in to `tx`, batches from `sends` out; closes
/// with 1000 once `sends` is dropped.
async fn websocket_task(
    mut ws: duplex_tokio::WebSocketStream<duplex_tokio::ClientIo>,
    tx: mpsc::Sender<Received>,
    mut sends: mpsc::Receiver<String>,
) {
    loop {
        tokio::select! {
            message = ws.next() => {
                let report = match message {
                    Some(Ok(message)) => Received::Bytes(Bytes::copy_from_slice(message.as_bytes())),
                    Some(Err(e)) => Received::Failed(e.to_string()),
                    None => Received::Failed("the WebSocket closed".into()),
                };
                let last = matches!(report, Received::Failed(_));
                if tx.send(report).await.is_err() || last {
                    return;
                }
            }
            batch = sends.recv() => match batch {
                Some(batch) => {
                    if ws.send(Message::from(batch)).await.is_err() {
                        let _ = tx.send(Received::Failed("the WebSocket failed".into())).await;
                        return;
                    }
                }
                None => {
                    let _ = ws.close().await;
                    return;
                }
            },
        }
    }
}

/// Reopens the `xhr` or `xhr_streaming` request each time it ends, and
/// passes every chunk on.
async fn xhr_task(http: HttpClient, url: String, tx: mpsc::Sender<Received>, timeout: Duration) {
    loop {
        let response = match open(&http, "POST", &url, None, timeout).await {
            Ok(response) => response,
            Err(Failure::Usage(e) | Failure::Failed(e)) => {
                let _ = tx.send(Received::Failed(e)).await;
                return;
            }
        };
        if !response.status().is_success() {
            let _ = tx
                .send(Received::Failed(format!(
                    "{url}: HTTP {}",
                    response.status()
                )))
                .await;
            return;
        }
        let mut body = response.into_body();
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if tx.send(Received::Bytes(data)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(Received::Failed(format!("{url}: {e}"))).await;
                    return;
                }
                None => break,
            }
        }
        if tx.send(Received::Ended).await.is_err() {
            return;
        }
    }
}

/// One request, its whole body back; a status other than 2xx fails.
async fn request(
    http: &HttpClient,
    method: &str,
    url: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<Bytes, Failure> {
    let response = open(http, method, url, body, timeout).await?;
    let status = response.status();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| Failure::failed(format!("{url}: no answer within {timeout:?}")))?
        .map_err(|e| Failure::failed(format!("{url}: {e}")))?
        .to_bytes();
    if !status.is_success() {
        return Err(Failure::failed(format!(
            "{url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    Ok(body)
}

/// Sends a request and waits (at most `timeout`) for the response head.
async fn open(
    http: &HttpClient,
    method: &str,
    url: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<http::Response<hyper::body::Incoming>, Failure> {
    let mut builder = http::Request::builder().method(method).uri(url);
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    tokio::time::timeout(timeout, http.request(request))
        .await
        .map_err(|_| Failure::failed(format!("{url}: no answer within {timeout:?}")))?
        .map_err(|e| Failure::failed(format!("{url}: {e}")))
}
